"""Who may use the site, on the reactor thread: access token, Host names, origins, CSRF."""
