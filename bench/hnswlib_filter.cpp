// hnswlib_filter.cpp -- hnswlib's filtered graph search on the data written
// by build/filter_bench, for bench/filter_compare.sh.
//
// Build (as bench/filter_compare.sh does):
//   g++ -O3 -march=native -std=c++17 -pthread bench/hnswlib_filter.cpp -o build/hnswlib_filter
// Usage:
//   build/hnswlib_filter DATA [EFS] [RESULTS|-] [THREADS] [MAXSEC]
// DATA: the DATA_OUT file of build/filter_bench (u64 n, dim, nq; f32
// vecs[n][dim]; u32 sel[n]; f32 queries[nq][dim]; i64 truth[5][nq][10]).
// EFS: comma list of ef values (default 16,32,64,128,256).  RESULTS: one
// tab-separated line per row (lib method share ef qps qps_cpu recall).
// MAXSEC (default 10): a row stops after the query that crosses MAXSEC
// seconds of CPU time (at least 20 queries); QPS and recall are over the
// queries run (the note says how many).  At 0.1% of 1M points every query
// walks most of the graph, and all 200 would take minutes per row.
//
// Debian 12's hnswlib is 0.6.2, which has no filter functor (it came in
// 0.7.0).  What 0.7's functor does -- keep walking through a node but never
// return it -- 0.6.2 already does for deleted nodes: searchBaseLayerST<true>
// (hnswalg.h) pushes every unvisited neighbour closer than the bound into
// the candidate queue, deleted or not, adds only non-deleted ones to the
// result queue, and stops only once the result queue holds ef nodes.  In
// 0.7 the same function tests `isMarkedDeleted || !filter(label)` at the
// same two places.  So for each selectivity this program marks every
// NON-matching point deleted (markDelete), runs the queries with searchKnn
// (k = 10) at each ef, and unmarks them again: hnswlib's filtered traversal
// without any callback overhead (an upper bound on 0.7's speed with a C++
// functor; with the Python callback it is slower still).
//
// Graph: M = 16, ef_construction = 100, L2 (as filter_bench's collection),
// built from THREADS threads (default 2).  QPS: one thread, one query at a
// time, per wall second and per CPU second of the thread.
#include <hnswlib/hnswlib.h>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double thread_cpu()
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void read_exact(FILE *f, void *p, size_t bytes, const char *what)
{
    if (std::fread(p, 1, bytes, f) != bytes) throw std::runtime_error(std::string("data file truncated in ") + what);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DATA [EFS] [RESULTS|-] [THREADS] [MAXSEC]\n", argv[0]);
        return 2;
    }
    try {
        std::vector<size_t> efs;
        std::string el = argc > 2 ? argv[2] : "16,32,64,128,256";
        for (size_t p = 0; p < el.size();) {
            size_t q = el.find(',', p);
            if (q == std::string::npos) q = el.size();
            long v = std::atol(el.substr(p, q - p).c_str());
            if (v <= 0) throw std::runtime_error("bad ef list " + el);
            efs.push_back((size_t)v);
            p = q + 1;
        }
        const char *resf = argc > 3 && std::strcmp(argv[3], "-") ? argv[3] : nullptr;
        int threads = argc > 4 ? std::atoi(argv[4]) : 2;
        if (threads < 1) threads = 1;
        double maxsec = argc > 5 ? std::atof(argv[5]) : 10.0;
        if (!(maxsec > 0)) maxsec = 10.0;

        FILE *f = std::fopen(argv[1], "rb");
        if (!f) throw std::runtime_error(std::string("cannot open ") + argv[1]);
        uint64_t hdr[3];
        read_exact(f, hdr, sizeof hdr, "header");
        const size_t n = hdr[0], dim = hdr[1], nq = hdr[2], K = 10;
        if (!n || !dim || !nq || dim > 65536 || n > (1ull << 32)) throw std::runtime_error("bad header");
        std::vector<float> vecs(n * dim), qs(nq * dim);
        std::vector<uint32_t> sel(n);
        std::vector<int64_t> truth(5 * nq * K);
        read_exact(f, vecs.data(), vecs.size() * 4, "vectors");
        read_exact(f, sel.data(), sel.size() * 4, "sel");
        read_exact(f, qs.data(), qs.size() * 4, "queries");
        read_exact(f, truth.data(), truth.size() * 8, "truth");
        std::fclose(f);

        hnswlib::L2Space space(dim);
        hnswlib::HierarchicalNSW<float> idx(&space, n, 16, 100, 100);
        double t0 = now();
        // First point alone (as the Python binding does), then the rest in parallel.
        idx.addPoint(vecs.data(), 0);
        std::atomic<size_t> next(1);
        std::vector<std::thread> th;
        for (int t = 0; t < threads; t++)
            th.emplace_back([&] {
                for (size_t i; (i = next.fetch_add(1)) < n;) idx.addPoint(vecs.data() + i * dim, i);
            });
        for (auto &t : th) t.join();
        std::printf("# hnswlib %s (headers): n=%zu dim=%zu nq=%zu M=16 efc=100 build %.1fs (%d threads)\n",
                    "0.6.2", n, dim, nq, now() - t0, threads);
        std::printf("%-11s %-9s %5s %10s %10s %8s   %s\n", "selectivity", "method", "ef", "QPS", "QPS/cpu", "recall",
                    "notes");
        FILE *rf = resf ? std::fopen(resf, "w") : nullptr;
        if (resf && !rf) throw std::runtime_error(std::string("cannot write ") + resf);

        static const double sels[5] = {0.5, 0.1, 0.01, 0.001, 0.0001};
        for (int si = 0; si < 5; si++) {
            uint32_t lim = (uint32_t)(sels[si] * 1000000);
            size_t nmatch = 0;
            for (size_t i = 0; i < n; i++) {
                if (sel[i] < lim) nmatch++;
                else idx.markDelete(i);
            }
            for (size_t ef : efs) {
                idx.setEf(ef);
                size_t hits = 0, want = 0;
                double t = now(), tc = thread_cpu();
                size_t qn = 0;
                for (size_t qi = 0; qi < nq; qi++) {
                    if (qi >= 20 && thread_cpu() - tc > maxsec) break;
                    qn++;
                    auto res = idx.searchKnn(qs.data() + qi * dim, K);
                    int64_t got[16];
                    size_t ng = 0;
                    while (!res.empty()) {
                        if (ng < 16) got[ng++] = (int64_t)res.top().second;
                        res.pop();
                    }
                    const int64_t *tr = truth.data() + (si * nq + qi) * K;
                    for (size_t a = 0; a < K; a++) {
                        if (tr[a] < 0) continue;
                        want++;
                        for (size_t b = 0; b < ng; b++)
                            if (got[b] == tr[a]) {
                                hits++;
                                break;
                            }
                    }
                }
                double w = now() - t, c = thread_cpu() - tc;
                double recall = want ? (double)hits / (double)want : 1.0;
                std::printf("%-11g %-9s %5zu %10.0f %10.0f %8.4f   %zu allowed (others markDelete'd), %zu queries\n",
                            sels[si] * 100, "hnswlib", ef, qn / w, qn / (c > 1e-9 ? c : 1e-9), recall, nmatch, qn);
                std::fflush(stdout);
                if (rf)
                    std::fprintf(rf, "hnswlib\thnswlib\t%g\t%zu\t%.1f\t%.1f\t%.4f\n", sels[si], ef, qn / w,
                                 qn / (c > 1e-9 ? c : 1e-9), recall);
            }
            for (size_t i = 0; i < n; i++)
                if (sel[i] >= lim) idx.unmarkDelete(i);
        }
        if (rf && std::fclose(rf) != 0) throw std::runtime_error("cannot write results");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib_filter: %s\n", e.what());
        return 1;
    }
    return 0;
}
