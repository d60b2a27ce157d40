from datetime import datetime, timedelta, timezone


class SearchActivities:
  def run(search_term):
    model = {
      'errors': None,
      'data': None
    }
    now = datetime.now(timezone.utc).astimezone()

    if search_term is None or len(search_term) < 1:
      model['errors'] = ['search_term_blank']
      return model

    corpus = [{
      'uuid': '248959df-3079-4947-b847-9e0892d1bab4',
      'handle': 'Andrew Brown',
      'message': 'Cloud is fun!',
      'created_at': (now - timedelta(days=1)).isoformat(),
      'expires_at': (now + timedelta(days=31)).isoformat()
    },
    {
      'uuid': '66e12864-8c26-4c3a-9658-95a10f8fea67',
      'handle': 'Worf',
      'message': 'I am out of prune juice',
      'created_at': (now - timedelta(days=7)).isoformat(),
      'expires_at': (now + timedelta(days=9)).isoformat()
    }]
    term = search_term.lower()
    model['data'] = [a for a in corpus if term in a['message'].lower() or term in a['handle'].lower()]
    return model
