"""Real peers the benches measure bffgate against (Apache httpd + mod_auth_openidc, ...)."""
