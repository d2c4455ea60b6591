"""Real outside servers for the tests, one pytest plugin module each (see ``tests/conftest.py``).

Each module but ``base.py`` starts one kind of server on free loopback ports, as a child
process or a thread, and gives session-scoped fixtures for it; ``base.py`` holds what they
share. ``bench/`` imports the same classes.
"""
