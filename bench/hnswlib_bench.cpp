// hnswlib_bench.cpp -- the measurement of `nearly bench`, done with native
// hnswlib (Debian's libhnswlib-dev headers), for bench/compare.sh.
//
// Build (as compare.sh does; the flags pip uses for the hnswlib wheel):
//   g++ -O3 -march=native -std=c++17 -pthread bench/hnswlib_bench.cpp -o build/hnswlib_bench
// Usage: same options as `nearly bench` (--data DIR --ef 10,20,40 --threads N
// --m 16 --ef-construction 200 --metric cosine|dot|l2 --k 10
// --limit-queries N --repeat R --json FILE).
//
// Cosine = normalise base and queries, then InnerProductSpace (what
// hnswlib's Python binding does for space='cosine').  Build: addPoint from
// N threads (ParallelFor as in the Python binding).  Per ef: a 1-thread pass
// of single searchKnn calls (QPS, recall@k, p50/p99 latency), then an
// N-thread pass (QPS).  Peak RSS from getrusage.  Also qps_1t_cpu (1-thread
// queries per second of thread CPU time) and build_cpu_s (process CPU time).
#include <hnswlib/hnswlib.h>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double cpu_time(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// A "Key:   123 kB" line of /proc/self/status, in bytes (0 if absent).
static size_t status_bytes(const char *key)
{
    FILE *f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, kl = std::strlen(key);
    while (std::fgets(line, sizeof line, f))
        if (!std::strncmp(line, key, kl)) kb = std::strtoull(line + kl, nullptr, 10);
    std::fclose(f);
    return kb * 1024;
}

static size_t peak_rss()
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (size_t)ru.ru_maxrss * 1024 : 0;
}

// Reads a .fvecs/.ivecs file (4-byte values), checking every record.
static std::vector<float> read_vecs(const std::string &path, size_t limit, size_t &n, size_t &dim)
{
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::vector<float> out;
    n = dim = 0;
    int32_t d;
    while ((!limit || n < limit) && std::fread(&d, 4, 1, f) == 1) {
        if (d <= 0 || (dim && (size_t)d != dim)) {
            std::fclose(f);
            throw std::runtime_error(path + ": record " + std::to_string(n) + " has dimension " + std::to_string(d));
        }
        dim = (size_t)d;
        out.resize((n + 1) * dim);
        if (std::fread(out.data() + n * dim, 4, dim, f) != dim) {
            std::fclose(f);
            throw std::runtime_error(path + ": truncated at record " + std::to_string(n));
        }
        n++;
    }
    std::fclose(f);
    return out;
}

template <class F> static void parallel_for(size_t n, int threads, size_t chunk, F fn)
{
    std::atomic<size_t> next(0);
    auto work = [&]() {
        for (;;) {
            size_t s = next.fetch_add(chunk);
            if (s >= n) break;
            for (size_t i = s; i < std::min(n, s + chunk); i++) fn(i);
        }
    };
    std::vector<std::thread> ts;
    for (int t = 1; t < threads; t++) ts.emplace_back(work);
    work();
    for (auto &t : ts) t.join();
}

static std::string infer_metric(const std::string &dir)
{
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    std::string base = d.substr(d.find_last_of('/') == std::string::npos ? 0 : d.find_last_of('/') + 1);
    auto dash = base.find_last_of('-');
    auto from_word = [](std::string w) -> std::string {
        for (auto &c : w) c = (char)std::tolower((unsigned char)c);
        if (w.rfind("l2", 0) == 0 || w.rfind("euclid", 0) == 0) return "l2";
        if (w.rfind("cos", 0) == 0 || w.rfind("angular", 0) == 0 || w.rfind("ip", 0) == 0) return "cosine";
        if (w.rfind("dot", 0) == 0) return "dot";
        return "";
    };
    if (dash != std::string::npos) {
        std::string m = from_word(base.substr(dash + 1));
        if (!m.empty()) return m;
    }
    std::ifstream mf(dir + "/meta.json");
    std::stringstream ss;
    ss << mf.rdbuf();
    std::string js = ss.str();
    auto p = js.find("\"metric\"");
    if (p != std::string::npos) {
        p = js.find('"', js.find(':', p) + 1);
        if (p != std::string::npos) return from_word(js.substr(p + 1, 16));
    }
    return "";
}

static std::vector<size_t> parse_list(const char *s)
{
    std::vector<size_t> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoul(item));
    if (v.empty()) throw std::runtime_error("empty --ef list");
    return v;
}

static void normalise(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
    if (s > 0) {
        float inv = (float)(1.0 / std::sqrt(s));
        for (size_t i = 0; i < dim; i++) v[i] *= inv;
    }
}

struct EfResult {
    size_t ef;
    double recall = 0, qps1 = 0, qpsn = 0, p50 = 0, p99 = 0, qps1cpu = 0;
};

int main(int argc, char **argv)
{
    std::string data, json, metric;
    std::vector<size_t> efs = {10, 20, 40, 80, 160};
    int threads = (int)std::thread::hardware_concurrency();
    size_t M = 16, efc = 200, k = 10, limit = 0, repeat = 1;
    try {
        for (int i = 1; i < argc; i++) {
            std::string a = argv[i];
            auto val = [&]() -> const char * {
                if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
                return argv[++i];
            };
            if (a == "--data") data = val();
            else if (a == "--json") json = val();
            else if (a == "--metric") metric = val();
            else if (a == "--ef") efs = parse_list(val());
            else if (a == "--threads") threads = std::atoi(val());
            else if (a == "--m") M = std::stoul(val());
            else if (a == "--ef-construction") efc = std::stoul(val());
            else if (a == "--k") k = std::stoul(val());
            else if (a == "--limit-queries") limit = std::stoul(val());
            else if (a == "--repeat") repeat = std::stoul(val());
            else throw std::runtime_error("unknown option " + a);
        }
        if (data.empty()) throw std::runtime_error("--data DIR is required");
        if (threads < 1) threads = 1;
        if (metric.empty()) metric = infer_metric(data);
        if (metric == "angular" || metric == "cos") metric = "cosine";
        if (metric == "euclidean" || metric == "euclid") metric = "l2";
        if (metric == "ip") metric = "dot";
        if (metric != "cosine" && metric != "l2" && metric != "dot")
            throw std::runtime_error("cannot infer the metric: pass --metric cosine|dot|l2");

        size_t n, dim, nq, qdim, gn, gk;
        std::vector<float> base = read_vecs(data + "/base.fvecs", 0, n, dim);
        std::vector<float> queries = read_vecs(data + "/query.fvecs", limit, nq, qdim);
        std::vector<float> gtraw = read_vecs(data + "/groundtruth.ivecs", nq, gn, gk);
        if (qdim != dim || gn < nq || gk < k) throw std::runtime_error("inconsistent data files");
        const int32_t *gt = reinterpret_cast<const int32_t *>(gtraw.data());
        if (metric == "cosine") {
            for (size_t i = 0; i < n; i++) normalise(&base[i * dim], dim);
            for (size_t i = 0; i < nq; i++) normalise(&queries[i * dim], dim);
        }
        size_t rss_loaded = peak_rss();

        hnswlib::SpaceInterface<float> *space;
        if (metric == "l2") space = new hnswlib::L2Space(dim);
        else space = new hnswlib::InnerProductSpace(dim);
        auto *index = new hnswlib::HierarchicalNSW<float>(space, n, M, efc, 100);
        double t0 = now(), c0 = cpu_time(CLOCK_PROCESS_CPUTIME_ID);
        index->addPoint(base.data(), 0);
        parallel_for(n - 1, threads, 1, [&](size_t i) { index->addPoint(&base[(i + 1) * dim], i + 1); });
        double build_s = now() - t0, build_cpu_s = cpu_time(CLOCK_PROCESS_CPUTIME_ID) - c0;
        std::vector<float>().swap(base); // the index holds its own copy: RSS at the end is the index's

        // Memory per vector excluding the vector: level-0 links + label, the
        // per-element lock, level and list pointer, the upper-level lists,
        // and an estimate of 48 B per label-map entry.
        double upper = 0;
        for (size_t i = 0; i < n; i++)
            if (index->element_levels_[i] > 0) upper += (double)index->size_links_per_element_ * index->element_levels_[i];
        double bpv_index = (double)(index->size_data_per_element_ - index->data_size_) + sizeof(std::mutex) +
                           sizeof(int) + sizeof(char *) + upper / (double)n + 48.0;

        std::vector<double> lat(nq);
        std::vector<hnswlib::labeltype> res(nq * k);
        auto run_one = [&](size_t q) {
            auto pq = index->searchKnn(&queries[q * dim], k);
            size_t cnt = pq.size();
            for (size_t j = k; j-- > 0;) {
                if (j >= cnt) {
                    res[q * k + j] = (hnswlib::labeltype)-1;
                    continue;
                }
                res[q * k + j] = pq.top().second;
                pq.pop();
            }
        };
        // Warm-up (untimed), as in `nearly bench`.
        index->setEf(efs[0]);
        parallel_for(std::min(nq, (size_t)200), threads, 4, run_one);

        std::vector<EfResult> out;
        for (size_t ef : efs) {
            EfResult r;
            r.ef = ef;
            index->setEf(ef);
            for (size_t rep = 0; rep < repeat; rep++) {
                double tp = now(), cp = cpu_time(CLOCK_THREAD_CPUTIME_ID);
                for (size_t q = 0; q < nq; q++) {
                    double tq = now();
                    run_one(q);
                    lat[q] = now() - tq;
                }
                double qps1 = (double)nq / (now() - tp);
                r.qps1cpu = std::max(r.qps1cpu, (double)nq / (cpu_time(CLOCK_THREAD_CPUTIME_ID) - cp));
                if (qps1 > r.qps1) {
                    r.qps1 = qps1;
                    std::sort(lat.begin(), lat.end());
                    auto pct = [&](double p) {
                        double pos = p * (double)(nq - 1);
                        size_t i = (size_t)pos;
                        double f = pos - (double)i;
                        return i + 1 < nq ? lat[i] * (1 - f) + lat[i + 1] * f : lat[nq - 1];
                    };
                    r.p50 = pct(0.50) * 1e6;
                    r.p99 = pct(0.99) * 1e6;
                }
                if (rep == 0) {
                    size_t hits = 0;
                    for (size_t q = 0; q < nq; q++)
                        for (size_t j = 0; j < k; j++)
                            for (size_t g = 0; g < k; g++)
                                if ((hnswlib::labeltype)gt[q * gk + g] == res[q * k + j]) {
                                    hits++;
                                    break;
                                }
                    r.recall = (double)hits / (double)(nq * k);
                }
                tp = now();
                parallel_for(nq, threads, 4, run_one);
                double qpsn = (double)nq / (now() - tp);
                r.qpsn = std::max(r.qpsn, qpsn);
            }
            out.push_back(r);
        }
        size_t peak = peak_rss(), rss_end = status_bytes("VmRSS:"), anon_end = status_bytes("RssAnon:");
#if defined(__AVX512F__)
        const char *simd = "avx512";
#elif defined(__AVX__)
        const char *simd = "avx";
#else
        const char *simd = "sse";
#endif
        std::printf("hnswlib bench  data=%s  n=%zu dim=%zu nq=%zu metric=%s  simd=%s\n", data.c_str(), n, dim, nq,
                    metric.c_str(), simd);
        std::printf("M=%zu ef_construction=%zu threads=%d  build %.2f s (%.2f s CPU)\n", M, efc, threads, build_s,
                    build_cpu_s);
        std::printf("index memory per vector (excluding the vector, estimated): %.1f B\n", bpv_index);
        std::printf("peak RSS %.1f MiB (%.1f MiB after loading)\n\n", peak / 1048576.0, rss_loaded / 1048576.0);
        std::printf("%6s %9s %11s %11s %9s %9s\n", "ef", "recall", "QPS 1t", "QPS Nt", "p50 us", "p99 us");
        for (auto &r : out)
            std::printf("%6zu %9.4f %11.0f %11.0f %9.1f %9.1f\n", r.ef, r.recall, r.qps1, r.qpsn, r.p50, r.p99);
        if (!json.empty()) {
            FILE *f = std::fopen(json.c_str(), "w");
            if (!f) throw std::runtime_error("cannot create " + json);
            std::fprintf(f,
                         "{\"library\": \"hnswlib\", \"n\": %zu, \"dim\": %zu, \"nq\": %zu, \"k\": %zu, \"metric\": \"%s\", "
                         "\"m\": %zu, \"ef_construction\": %zu, \"threads\": %d, \"build_s\": %.4f, "
                         "\"build_cpu_s\": %.4f, \"peak_rss_bytes\": %zu, \"rss_after_load_bytes\": %zu, "
                         "\"bytes_per_vector_index\": %.1f, \"simd\": \"%s\", \"rss_end_bytes\": %zu, "
                         "\"rss_anon_end_bytes\": %zu,\n \"results\": [",
                         n, dim, nq, k, metric.c_str(), M, efc, threads, build_s, build_cpu_s, peak, rss_loaded,
                         bpv_index, simd, rss_end, anon_end);
            for (size_t e = 0; e < out.size(); e++)
                std::fprintf(f,
                             "%s\n  {\"ef\": %zu, \"recall\": %.5f, \"qps_1t\": %.1f, \"qps_nt\": %.1f, \"p50_us\": %.2f, "
                             "\"p99_us\": %.2f, \"qps_1t_cpu\": %.1f}",
                             e ? "," : "", out[e].ef, out[e].recall, out[e].qps1, out[e].qpsn, out[e].p50, out[e].p99,
                             out[e].qps1cpu);
            std::fprintf(f, "]}\n");
            if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + json);
        }
        delete index;
        delete space;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
