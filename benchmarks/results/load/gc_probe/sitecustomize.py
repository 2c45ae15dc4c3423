import gc, os, sys, time, threading
if "serve" in sys.argv or any("evostim" in a for a in sys.argv):
    _t = {}
    _log = open(f"/tmp/gcprobe/gc_{os.getpid()}.txt", "a", buffering=1)
    def _cb(phase, info):
        if phase == "start":
            _t[threading.get_ident()] = time.perf_counter()
        else:
            d = time.perf_counter() - _t.pop(threading.get_ident(), time.perf_counter())
            if info["generation"] == 2 or d > 0.02:
                _log.write(f"{time.time():.3f} gen{info['generation']} {d*1000:.1f} ms collected {info['collected']}\n")
    gc.callbacks.append(_cb)
