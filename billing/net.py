"""Local network helpers for the services `billing run` starts on one machine."""

import socket


def free_port(host: str, preferred: int) -> int:
    """The preferred port when it is free, else one the system picks."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            # As the servers themselves do: a port whose old connections linger in
            # TIME_WAIT is free to listen on again (a restarted broker keeps its port).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f"no free port on {host}")
