"""Mock users shared by the services (week 2 has no database yet)."""

# handle -> profile. Handles in the home feed are display names ("Andrew Brown");
# normalise_handle() maps either form to the key here.
USERS = {
    "andrewbrown": {"uuid": "0b1e2d8e-5d43-4b7a-8d2f-3b6e0a4c9f01", "display_name": "Andrew Brown", "handle": "andrewbrown"},
    "worf": {"uuid": "5f3f7a52-8c2e-4d4a-9b0e-2f1d6c7a8e02", "display_name": "Worf", "handle": "worf"},
    "garek": {"uuid": "9a6c2b14-3e7f-4f58-a1d9-6b2c8e4f7d03", "display_name": "Garek", "handle": "garek"},
    "bayko": {"uuid": "c4d8e2f6-7a1b-4c3d-8e9f-0a1b2c3d4e04", "display_name": "Andrew Bayko", "handle": "bayko"},
    "londo": {"uuid": "e7f1a3b5-c9d2-4e6f-8a0b-1c2d3e4f5a05", "display_name": "Londo Mollari", "handle": "londo"},
}


def normalise_handle(handle):
    if handle is None:
        return ""
    return "".join(handle.split()).lstrip("@").lower()


def find_user(handle):
    return USERS.get(normalise_handle(handle))
