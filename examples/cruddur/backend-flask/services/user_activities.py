from datetime import datetime, timedelta, timezone

from aws_xray_sdk.core import xray_recorder

from services import flags
from services.mock_data import find_user, normalise_handle


class UserActivities:
  def run(user_handle):
    model = {
      'errors': None,
      'data': None
    }
    now = datetime.now(timezone.utc).astimezone()

    if user_handle is None or len(normalise_handle(user_handle)) < 1:
      model['errors'] = ['blank_user_handle']
      return model

    user = find_user(user_handle)
    if user is None:
      model['errors'] = ['user_not_found']
      return model

    # X-Ray: the guides open a 'user_activities' segment and a 'mock-data' subsegment.
    # Under XRayMiddleware the request already has a segment, so the route is captured
    # as the 'activities_users' subsegment (see app.py) and 'mock-data' nests inside it.
    subsegment = xray_recorder.begin_subsegment('mock-data') if flags.XRAY_ENABLED else None
    try:
      results = [{
        'uuid': '248959df-3079-4947-b847-9e0892d1bab4',
        'handle': user['display_name'],
        'message': 'Cloud is fun!',
        'created_at': (now - timedelta(days=1)).isoformat(),
        'expires_at': (now + timedelta(days=31)).isoformat()
      }]
      model['data'] = results

      if subsegment is not None:
        # xray -------
        dict = {
          "now": now.isoformat(),
          "results-size": len(model['data'])
        }
        subsegment.put_metadata('key', dict, 'namespace')
        subsegment.put_annotation('user_handle', user['handle'])
    finally:
      if subsegment is not None:
        xray_recorder.end_subsegment()
    return model
