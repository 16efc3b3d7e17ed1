#!/usr/bin/env bash
# ./scripts/memory-speed.sh [seconds, default 60]
# How steady this machine's memory speed is, before trusting a latency figure measured on it
# (docs/performance.md, "Session 13"). One thread per core chases pointers through a random
# cycle of 64 MB, timing each fixed unit of 200,000 steps; prints the unit's time per thread
# (p50, p90, p99, max) and the slowest half-seconds. A compute-only loop hides what another
# tenant of the host does to caches and memory bandwidth; this one shows it.
# Needs gcc. Run it on an otherwise idle machine: it uses every core.
set -euo pipefail
seconds="${1:-60}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cat > "$dir/probe.c" <<'C'
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#define SLOTS (8 * 1024 * 1024)
static double seconds_run;
static const char *out_dir;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* One random cycle through every slot (Sattolo), so each step is a cache miss. */
static size_t *cycle(unsigned seed) {
    size_t *next = malloc(SLOTS * sizeof *next);
    for (size_t i = 0; i < SLOTS; i++) next[i] = i;
    srand(seed);
    for (size_t i = SLOTS - 1; i > 0; i--) {
        size_t j = (((size_t)rand() << 16) ^ (size_t)rand()) % i;
        size_t t = next[i]; next[i] = next[j]; next[j] = t;
    }
    return next;
}
static void *chase(void *arg) {
    long id = (long)arg;
    size_t *next = cycle((unsigned)id + 1), at = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/thread%ld.txt", out_dir, id);
    FILE *f = fopen(path, "w");
    double start = now();
    while (now() - start < seconds_run) {
        double t0 = now();
        for (int k = 0; k < 200000; k++) at = next[at];
        fprintf(f, "%.3f %.3f\n", t0 - start, (now() - t0) * 1000);
    }
    fclose(f);
    return (void *)at;
}
int main(int argc, char **argv) {
    seconds_run = atof(argv[1]);
    out_dir = argv[2];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    pthread_t threads[256];
    for (long i = 0; i < cores && i < 256; i++) pthread_create(&threads[i], 0, chase, (void *)i);
    for (long i = 0; i < cores && i < 256; i++) pthread_join(threads[i], 0);
    return 0;
}
C
gcc -O2 -pthread "$dir/probe.c" -o "$dir/probe"
"$dir/probe" "$seconds" "$dir"
for f in "$dir"/thread*.txt; do
    name="$(basename "$f" .txt)"
    sort -k2 -n "$f" | awk -v n="$name" '{t[NR] = $2} END {printf "%s: %d units of 200,000 steps; ms per unit: p50 %.1f, p90 %.1f, p99 %.1f, max %.1f\n", n, NR, t[int(NR * 0.5)], t[int(NR * 0.9)], t[int(NR * 0.99)], t[NR]}'
    awk '{w = int($1 * 2); sum[w] += $2; n[w]++} END {for (w in n) printf "%.1f %.1f\n", w / 2, sum[w] / n[w]}' "$f" \
        | sort -k2 -n -r | head -3 | awk -v n="$name" 'BEGIN {printf "%s: slowest half-seconds (start s, mean ms per unit):", n} {printf " %s s %s ms;", $1, $2} END {print ""}'
done
