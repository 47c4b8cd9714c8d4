"""The two pool modes of ``sweep``: a thread pool over a ``queue.Queue`` and a
``multiprocessing`` pool.

Thread pool (the seed's design, without its defects): every item a worker takes is
marked done in a ``finally``, so a probe that raises is recorded as an error for its
target and never leaves ``join`` waiting; the pool is always shut down (one stop
sentinel per worker, queued in a ``finally``) and joined within a bound.

Process pool: the targets are dealt into one interleaved slice per process and each
process runs the fast engine on its slice at its share of the rate. It uses the
``spawn`` start method: the workers are top-level functions of this module and
``ops.__main__`` runs nothing at import, so a child never re-runs the program; that
holds for ``python3 -m ops`` and for the zipapp, because multiprocessing does not
re-import a main module named ``__main__`` (which is what a zipapp's is).
"""
import math
import queue
import threading
import time

from ops._fast import Config, ProbeFailed, RttEstimator, probe_one, sweep_fast

_STOP = object()
JOIN_SLACK_S = 5.0


def _per_target_s(cfg):
    return sum(cfg.timeout * cfg.backoff ** a + 0.5 for a in range(cfg.retries + 1))


def _pool_bound(cfg, count, workers):
    end = time.monotonic() + math.ceil(count / float(workers)) * _per_target_s(cfg) + JOIN_SLACK_S
    return end if cfg.deadline is None else min(end, cfg.deadline + JOIN_SLACK_S)


def _worker(items, targets, cfg, probe, answered, errors, lock):
    while True:
        idx = items.get()
        try:
            if idx is _STOP:
                return
            if cfg.deadline is not None and time.monotonic() >= cfg.deadline:
                continue
            try:
                hit = probe(targets[idx], cfg)
            except ProbeFailed as exc:
                hit, error = None, str(exc)
            except Exception as exc:  # a broken probe costs its target, not the sweep
                hit, error = None, "%s: %s" % (type(exc).__name__, exc)
            else:
                error = None
            with lock:
                if hit is not None:
                    answered[idx] = hit
                elif error:
                    errors[idx] = error
        finally:
            items.task_done()


def sweep_pool(targets, cfg, workers=64, probe=probe_one):
    """(answered, errors) keyed by index; ``probe(ip, cfg)`` returns (rtt_ms, extra),
    None for no reply, or raises."""
    answered, errors, lock = {}, {}, threading.Lock()
    if not targets:
        return answered, errors
    if cfg.estimator is None:
        cfg = cfg.derive(estimator=RttEstimator())
    items = queue.Queue()
    count = max(1, min(int(workers), len(targets)))
    threads = [threading.Thread(target=_worker, name="sweep-%d" % n,
                                args=(items, targets, cfg, probe, answered, errors, lock))
               for n in range(count)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    try:
        for idx in range(len(targets)):
            items.put(idx)
    finally:
        for _ in threads:
            items.put(_STOP)
        end = _pool_bound(cfg, len(targets), count)
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
    stuck = sum(1 for thread in threads if thread.is_alive())
    if stuck:
        raise RuntimeError("%d sweep worker(s) still busy at the time bound" % stuck)
    items.join()  # every worker has exited, so this returns at once
    return answered, errors


def _slice_worker(payload):
    """Runs in a pool process: the fast engine over one slice of the targets."""
    targets, cfg = payload
    return sweep_fast(targets, cfg)


def sweep_process(targets, cfg, workers=4, start_method="spawn"):
    """(answered, errors) keyed by index, from ``workers`` processes."""
    if not targets:
        return {}, {}
    count = max(1, min(int(workers), len(targets)))
    slices = [list(range(n, len(targets), count)) for n in range(count)]
    share = cfg.derive(rate=max(1.0, cfg.rate / count))
    payloads = [([targets[i] for i in indexes], share) for indexes in slices]
    import multiprocessing  # only this mode pays for the import

    context = multiprocessing.get_context(start_method)
    sending = len(targets) * (cfg.retries + 1) / cfg.rate
    end = _pool_bound(cfg, len(targets), len(targets)) + sending + 10.0 + count
    with context.Pool(count) as pool:  # leaving the block terminates the pool
        parts = pool.map_async(_slice_worker, payloads).get(max(1.0, end - time.monotonic()))
    answered, errors = {}, {}
    for number, indexes in enumerate(slices):
        part_answered, part_errors = parts[number]
        for local, hit in part_answered.items():
            answered[indexes[local]] = hit
        for local, error in part_errors.items():
            errors[indexes[local]] = error
    return answered, errors


__all__ = ["Config", "sweep_pool", "sweep_process"]
