// cbnn co-simulation harness: drives a Verilated cbnn_top cycle by cycle.
//
// The same file serves every design: ports are the ones of the hardware contract, and their
// C++ types (CData ... VlWide<N>) are handled by overloads. It reads the input beats of every
// image from a binary file, offers them on s_axis with the valid schedule of the chosen stall
// seed, sets m_axis_tready with the ready schedule of that seed, and writes one line per output
// handshake: "o CYCLE WORD..." (32-bit words of m_axis_tdata, least significant first) until
// the number of output beats the file names (one per image for a design; a core test of a
// sliding-window unit expects one per window) have come, and one line "i CYCLE" per image for
// the handshake of its first input beat (an image's latency counts from it). The
// schedules are the ones of src/reference/cycle.rs (Schedule), bit for bit.
//
// usage: Vsim INPUT.bin OUTPUT.txt (free|SEED) MAX_CYCLES [TRACE.vcd]
// (TRACE.vcd only for a simulator built with --trace, which defines VM_TRACE)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "Vcbnn_top.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static bool coin(bool stalled, uint64_t seed, uint64_t t, uint64_t stream) {
    if (!stalled) return true;
    return ((mix(mix(seed) ^ ((t << 1) | stream)) >> 32) % 4) != 0;
}

static void set_port(CData& p, const uint32_t* w) { p = (CData)w[0]; }
static void set_port(SData& p, const uint32_t* w) { p = (SData)w[0]; }
static void set_port(IData& p, const uint32_t* w) { p = w[0]; }
static void set_port(QData& p, const uint32_t* w) { p = (QData)w[0] | ((QData)w[1] << 32); }
template <std::size_t N> static void set_port(VlWide<N>& p, const uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) p[i] = w[i];
}
static void get_port(const CData& p, uint32_t* w) { w[0] = p; }
static void get_port(const SData& p, uint32_t* w) { w[0] = p; }
static void get_port(const IData& p, uint32_t* w) { w[0] = p; }
static void get_port(const QData& p, uint32_t* w) { w[0] = (uint32_t)p; w[1] = (uint32_t)(p >> 32); }
template <std::size_t N> static void get_port(const VlWide<N>& p, uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) w[i] = p[i];
}

static uint32_t read_u32(FILE* f) {
    uint32_t v;
    if (fread(&v, 4, 1, f) != 1) { fprintf(stderr, "harness: input file is truncated\n"); exit(2); }
    return v;
}

int main(int argc, char** argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s INPUT OUTPUT (free|SEED) MAX_CYCLES [VCD]\n", argv[0]); return 2; }
    FILE* in = fopen(argv[1], "rb");
    if (!in) { perror(argv[1]); return 2; }
    if (read_u32(in) != 0x4E4E4243u) { fprintf(stderr, "harness: bad input magic\n"); return 2; }
    uint32_t images = read_u32(in), beats = read_u32(in), in_words = read_u32(in), out_words = read_u32(in);
    uint32_t expected = read_u32(in);  // output beats to wait for (one per image for a design)
    std::vector<uint32_t> data((size_t)images * beats * in_words + 2);
    for (size_t i = 0; i + 2 < data.size(); i++) data[i] = read_u32(in);
    fclose(in);
    FILE* out = fopen(argv[2], "w");
    if (!out) { perror(argv[2]); return 2; }
    bool stalled = strcmp(argv[3], "free") != 0;
    uint64_t seed = stalled ? strtoull(argv[3], nullptr, 10) : 0;
    uint64_t max_cycles = strtoull(argv[4], nullptr, 10);

    VerilatedContext* ctx = new VerilatedContext;
    Vcbnn_top* top = new Vcbnn_top{ctx};
#if VM_TRACE
    VerilatedVcdC* tfp = nullptr;
    if (argc > 5) {
        ctx->traceEverOn(true);
        tfp = new VerilatedVcdC;
        top->trace(tfp, 99);
        tfp->open(argv[5]);
    }
#else
    // Built without tracing (cbnn builds a tracing simulator for runs that dump a VCD).
    if (argc > 5) { fprintf(stderr, "harness: built without VCD tracing\n"); return 2; }
    struct NoTrace { void dump(uint64_t) {} void close() {} }* tfp = nullptr;
#endif
    std::vector<uint32_t> obuf(out_words + 2);
    uint64_t now = 0;  // trace time: 2 units a cycle
    top->ap_clk = 0; top->ap_rst_n = 0; top->s_axis_tvalid = 0; top->m_axis_tready = 0;
    top->eval();
    for (int i = 0; i < 2; i++) {
        top->ap_clk = 1; top->eval(); if (tfp) tfp->dump(now++);
        top->ap_clk = 0; top->eval(); if (tfp) tfp->dump(now++);
    }
    top->ap_rst_n = 1;
    uint64_t total = (uint64_t)images * beats, sent = 0, outputs = 0, t = 0;
    bool offering = false;
    while (outputs < expected) {
        if (t >= max_cycles) { fprintf(out, "timeout %llu\n", (unsigned long long)t); break; }
        if (!offering && sent < total && coin(stalled, seed, t, 0)) offering = true;
        top->s_axis_tvalid = offering;
        if (offering) set_port(top->s_axis_tdata, &data[sent * in_words]);
        bool ready = coin(stalled, seed, t, 1);
        top->m_axis_tready = ready;
        top->ap_clk = 0; top->eval(); if (tfp) tfp->dump(now++);
        bool in_hs = offering && top->s_axis_tready;
        if (top->m_axis_tvalid && ready) {
            get_port(top->m_axis_tdata, obuf.data());
            fprintf(out, "o %llu", (unsigned long long)t);
            for (uint32_t i = 0; i < out_words; i++) fprintf(out, " %08x", obuf[i]);
            fputc('\n', out);
            outputs++;
        }
        top->ap_clk = 1; top->eval(); if (tfp) tfp->dump(now++);
        if (in_hs) {
            if (sent % beats == 0) fprintf(out, "i %llu\n", (unsigned long long)t);
            offering = false;
            sent++;
        }
        t++;
    }
    fprintf(out, "end %llu\n", (unsigned long long)t);
    fclose(out);
    if (tfp) { tfp->close(); delete tfp; }
    top->final();
    delete top;
    delete ctx;
    return 0;
}
