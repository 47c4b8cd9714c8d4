"""Child process of ``invoke bench.fabric``: one user task on every lab host, either
through ``fleetops.Fleet`` or through Fabric's own ``ThreadingGroup``; prints
``OK <hosts that succeeded>`` on stdout.

``python -m fleetops.lab.bench_fabric fleetops INVENTORY FILE`` /
``python -m fleetops.lab.bench_fabric fabric KNOWN_HOSTS KEY PORT FILE ADDRESS...``

The task is the same for both: one ``run`` and one small ``put`` (FILE, 1 KiB). Fabric
gets the lab's known_hosts loaded (its default would add unknown keys silently).
"""

from __future__ import annotations

import sys

REMOTE = "/tmp/fleetops-bench-put"


def user_task(c, local: str) -> str:
    out = c.run("uname -n", hide=True).stdout.strip()
    c.put(local, REMOTE)
    return out


def with_fleetops(inventory: str, local: str) -> int:
    import fleetops

    result = fleetops.Fleet(inventory, forks=1000).run(user_task, local)
    for name, host in result.failed.items():
        print(f"{name}: {host.status}: {host.reason}", file=sys.stderr)
    return len(result.succeeded)


def with_fabric(known_hosts: str, key: str, port: int, local: str, addresses: list[str]) -> int:
    from fabric import ThreadingGroup

    group = ThreadingGroup(*addresses, user="root", port=port,
                           connect_kwargs={"key_filename": key, "allow_agent": False,
                                           "look_for_keys": False})
    for conn in group:
        conn.client.load_host_keys(known_hosts)
    ran = group.run("uname -n", hide=True, warn=True)
    put = group.put(local, REMOTE)
    group.close()
    ok = [c for c in group if c in ran.succeeded and c in put.succeeded]
    return len(ok)


def main(argv: list[str]) -> int:
    if argv[0] == "fleetops":
        count = with_fleetops(argv[1], argv[2])
    else:
        count = with_fabric(argv[1], argv[2], int(argv[3]), argv[4], argv[5:])
    print(f"OK {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
