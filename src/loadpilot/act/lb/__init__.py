"""Load-balancer drivers: the shared listening socket, nginx and HAProxy."""
