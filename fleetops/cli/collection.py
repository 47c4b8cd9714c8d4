"""Every built-in task as one invoke Collection, for the checkout's ``tasks.py`` and for a
user project's own ``tasks.py`` (``from fleetops.cli.collection import builtin``)."""

from __future__ import annotations

from invoke import Collection


def builtin() -> Collection:
    """A new Collection of the built-in tasks (``run``, ``disk-report``, ``play``...);
    add your own ``fleet_task``\\ s to it. Installs fleetops's option handling
    (:func:`fleetops.cli.program.install`: a bad option exits 5 with the task's usage)."""
    from fleetops.cli import (
        adhoc,
        bench,
        benchfabric,
        cron,
        daemons,
        diskbench,
        diskreport,
        lab,
        play,
        program,
        scan,
    )

    program.install()

    ns = Collection()
    ns.add_task(adhoc.run)
    ns.add_task(scan.scan)
    ns.add_task(play.play)
    ns.add_collection(Collection("lab", lab.up, lab.down, lab.status, lab.fault))
    ns.add_collection(Collection("disk-report", diskreport.report, diskreport.schedule,
                                 diskreport.unschedule))
    ns.add_collection(Collection("cron", cron.install, cron.remove, cron.list_))
    bench_ns = Collection("bench", bench.adhoc, bench.disk_report, bench.jump, bench.flood)
    bench_ns.add_task(scan.bench_sweep, name="sweep")
    bench_ns.add_task(benchfabric.fabric, name="fabric")
    bench_ns.add_task(diskbench.disk_history)
    bench_ns.add_task(diskbench.disk_rtt)
    ns.add_collection(bench_ns)
    ns.add_collection(daemons.watcher_ns)
    ns.add_collection(daemons.dirsync_ns)
    return ns
