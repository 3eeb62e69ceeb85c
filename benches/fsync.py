import os, time, sys, statistics
path = sys.argv[1] if len(sys.argv) > 1 else "fsync.test"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"\0" * 4096 * 16); os.fsync(fd)
for name, sync in (("fdatasync overwrite", os.fdatasync), ("fsync overwrite", os.fsync)):
    lat = []
    for i in range(n):
        os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
        t = time.perf_counter(); sync(fd); lat.append((time.perf_counter() - t) * 1e3)
    lat.sort()
    print(f"{name}: n={n} p50={lat[n//2]:.2f} ms p90={lat[int(n*.9)]:.2f} ms p99={lat[int(n*.99)]:.2f} ms mean={statistics.mean(lat):.2f} ms")
lat = []
for i in range(n):
    os.lseek(fd, 0, os.SEEK_END); os.write(fd, os.urandom(4096))
    t = time.perf_counter(); os.fsync(fd); lat.append((time.perf_counter() - t) * 1e3)
lat.sort()
print(f"fsync append: n={n} p50={lat[n//2]:.2f} ms p90={lat[int(n*.9)]:.2f} ms p99={lat[int(n*.99)]:.2f} ms mean={statistics.mean(lat):.2f} ms")
os.close(fd); os.unlink(path)
