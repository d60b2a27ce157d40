from datetime import datetime, timedelta, timezone


class MessageGroups:
  def run(user_handle):
    model = {
      'errors': None,
      'data': None
    }

    now = datetime.now(timezone.utc).astimezone()
    results = [
      {
        'uuid': '24b95582-9e7b-4e0a-9ad1-639773ab7552',
        'display_name': 'Andrew Brown',
        'handle': 'andrewbrown',
        'message': 'Cloud is fun!',
        'created_at': now.isoformat()
      },
      {
        'uuid': '417c360e-c4e6-4fce-873b-d2d71469b4ac',
        'display_name': 'Worf',
        'handle': 'worf',
        'message': 'This is a pain!',
        'created_at': (now - timedelta(days=1)).isoformat()
      }
    ]
    model['data'] = results
    return model
