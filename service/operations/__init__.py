"""What the handlers of the API and of the pages do, once, by area: check the caller may (by
asking `service.policy`), call the domain off the event loop, and shape the result. Route and
page handlers stay a few lines each and never call one another.

- `links`: the API URLs the responses carry.
- `catalogue`: objects and their photos.
- `searches`: searching with a photo, evidence pictures, the search log.
- `jobs`: batch listing checks and their manifests.
- `accounts`: accounts, API tokens and browser sessions.
"""
