"""The threaded WSGI server: sockets, threads, signals and logs live here."""
