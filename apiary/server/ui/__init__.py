"""The web UI's routes, by signal; ``apiary.server.ui_routes`` lists them, `access` decides who each call acts for."""
