"""The pages people use in a browser (Jinja2 templates in `service/templates`), one router per
area: `auth` (login, logout, home), `catalogue` (objects, upload), `search`, `jobs`, `admin`
(search log, accounts). Each handler declares its action like the API's do and calls
`service.operations`, never an API handler; `rendering` fills in what every template needs."""
