"""fleetops tasks: `invoke --list` shows them all. The code lives in fleetops/cli/."""

from invoke import Collection

from fleetops.cli import adhoc, bench, cron, daemons, diskreport, lab, play, program, scan

program.install()  # option errors exit 5 with the task's usage; sane --help; quiet | head

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
ns.add_collection(bench_ns)
ns.add_collection(daemons.watcher_ns)
ns.add_collection(daemons.dirsync_ns)
