from datetime import datetime, timedelta, timezone

from services.mock_data import find_user


class Messages:
  def run(message_group_handle, user_handle):
    model = {
      'errors': None,
      'data': None
    }

    other = find_user(message_group_handle)
    if other is None:
      model['errors'] = ['message_group_not_found']
      return model

    now = datetime.now(timezone.utc).astimezone()
    results = [
      {
        'uuid': '4e81c06a-db0f-4281-b4cc-98208537772a',
        'display_name': other['display_name'],
        'handle': other['handle'],
        'message': 'Cloud is fun!',
        'created_at': (now - timedelta(minutes=10)).isoformat()
      },
      {
        'uuid': '66e12864-8c26-4c3a-9658-95a10f8fea67',
        'display_name': other['display_name'],
        'handle': other['handle'],
        'message': 'This platform is great!',
        'created_at': now.isoformat()
      }
    ]
    model['data'] = results
    return model
