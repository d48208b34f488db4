`default_nettype none
// cbnn_mvtu: XNOR-popcount matrix-vector unit with PE x SIMD folding.
//
// Takes one N-bit ±1 input vector (bit 1 = +1), and for each of M neurons counts the mismatches
// between its weight row and the input, PE neurons at a time, SIMD inputs per neuron per cycle.
// With SCORES = 0 it outputs M bits, neuron j being 1 (+1) iff matches_j >= T_j; with
// SCORES = 1 it outputs M scores, score j = matches_j (the output layer's class scores).
// Inputs are padded to NP = SF * SIMD and neurons to MP = NF * PE with zero weights; counting
// mismatches (XOR) instead of matches keeps padding out of every count, so any PE/SIMD is exact.
//
// Weights come from WEIGHT_FILE ($readmemh): word s = nf * SF + sf holds PE * SIMD bits, neuron
// nf * PE + p's inputs sf * SIMD .. sf * SIMD + SIMD - 1 in bits [p * SIMD +: SIMD]. Thresholds
// come from THRESH_FILE: word nf holds PE values U = N + 1 - T of TW bits; the neuron fires iff
// mismatches < U. Both memories have a registered read port, so synthesis can map them to
// block RAM; the next word is fetched one cycle ahead. A fully parallel unit (NF = SF = 1) can
// instead take its one word of each as the constants WEIGHTS and THRESHOLDS (CONST_WEIGHTS = 1):
// the weights are then compiled into logic, with the same timing.
//
// Timing (STEPS = NF * SF, PIPE = 0 or 1 register stages after the popcount tree): the cycle
// after an input handshake the unit starts one step per cycle; the result is valid
// STEPS + PIPE + 1 cycles after the handshake; only the last cycle (the one that writes the
// result) waits while a previous result is still unconsumed. s_axis_tready is high whenever the unit
// is not computing, so the initiation interval is STEPS + PIPE + 1 cycles, as is the latency.
// PIPE = 1 cuts the path XOR -> popcount -> accumulate -> compare in two at one cycle's cost.
module cbnn_mvtu #(
    parameter N = 64,                      // inputs per neuron
    parameter M = 16,                      // neurons
    parameter PE = 4,                      // neurons in parallel, 1..M
    parameter SIMD = 16,                   // inputs per neuron per cycle, 1..N
    parameter SCORES = 0,                  // 0: threshold bits out; 1: scores out
    parameter PIPE = 0,                    // register stages after the popcount: 0 or 1
    parameter WEIGHT_FILE = "",            // weight memory image ("": none, elaboration only)
    parameter THRESH_FILE = "",            // threshold memory image (unused when SCORES = 1)
    parameter NF = (M + PE - 1) / PE,      // neuron folds
    parameter SF = (N + SIMD - 1) / SIMD,  // input folds
    parameter CW = $clog2(N + 1),          // width of a count of 0..N
    parameter TW = $clog2(N + 2),          // width of U in 0..N+1
    parameter BW = SCORES ? CW : 1,        // output bits per neuron
    parameter OW = M * BW,                 // output width
    parameter CONST_WEIGHTS = 0,           // 1: use WEIGHTS/THRESHOLDS (only when NF = SF = 1)
    parameter [PE*SIMD-1:0] WEIGHTS = {PE*SIMD{1'b0}},  // the one weight word, if constant
    parameter [PE*TW-1:0] THRESHOLDS = {PE*TW{1'b0}}    // the one threshold word, if constant
) (
    input  wire          clk,
    input  wire          rst_n,            // synchronous, active low
    input  wire [N-1:0]  s_axis_tdata,
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    output wire [OW-1:0] m_axis_tdata,
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (PE < 1 || PE > M) begin : g_check_pe_must_be_1_to_m
            cbnn_parameter_error_pe_must_be_1_to_m u_error ();
        end
        if (SIMD < 1 || SIMD > N) begin : g_check_simd_must_be_1_to_n
            cbnn_parameter_error_simd_must_be_1_to_n u_error ();
        end
        if (PIPE != 0 && PIPE != 1) begin : g_check_pipe_must_be_0_or_1
            cbnn_parameter_error_pipe_must_be_0_or_1 u_error ();
        end
        if (CONST_WEIGHTS && (NF != 1 || SF != 1)) begin : g_check_const_weights_need_nf_sf_1
            cbnn_parameter_error_const_weights_need_nf_sf_1 u_error ();
        end
    endgenerate
    localparam NP = SF * SIMD;
    localparam MP = NF * PE;
    localparam STEPS = NF * SF;
    localparam AW = (STEPS > 1) ? $clog2(STEPS) : 1;
    localparam NW = (NF > 1) ? $clog2(NF) : 1;
    localparam FW = (SF > 1) ? $clog2(SF) : 1;
    localparam SCW = $clog2(SIMD + 1);
    localparam integer NF_LAST = NF - 1;
    localparam integer SF_LAST = SF - 1;
    localparam integer N_INT = N;

    // Control. Stage A walks the steps (nf, sf) and fetches the weights; stage E accumulates
    // the popcounts and writes the results, PIPE cycles behind it.
    reg busy;                              // computing an image
    reg issue;                             // stage A has steps left
    reg outv;
    reg [NW-1:0] nf;
    reg [FW-1:0] sf;
    wire a_last_sf = (sf == SF_LAST[FW-1:0]);
    wire a_last = a_last_sf && (nf == NF_LAST[NW-1:0]);
    wire e_valid;                          // stage E holds a step
    wire [NW-1:0] e_nf;
    wire e_last_sf;
    wire e_last = e_valid && e_last_sf && (e_nf == NF_LAST[NW-1:0]);
    wire load = s_axis_tvalid && !busy;
    wire advance = busy && (!e_last || !outv || m_axis_tready);
    wire step_a = advance && issue;
    assign s_axis_tready = !busy;
    assign m_axis_tvalid = outv;

    // The current weight and threshold words.
    wire [PE*SIMD-1:0] wq;
    /* verilator lint_off UNUSED */
    wire [PE*TW-1:0] tq;                   // unused when SCORES = 1
    /* verilator lint_on UNUSED */
    generate
        if (CONST_WEIGHTS) begin : g_const
            assign wq = WEIGHTS;
            assign tq = THRESHOLDS;
        end else begin : g_mem
            // Memories with a registered read port (cbnn_rom); the next word is fetched one
            // cycle ahead.
            reg [AW-1:0] addr;
            wire [AW-1:0] waddr = load ? {AW{1'b0}} : addr + 1'b1;
            wire wen = load || (step_a && !a_last);
            always @(posedge clk) begin
                if (wen) addr <= waddr;
            end
            wire [PE*SIMD-1:0] wr;
            cbnn_rom #(.W(PE*SIMD), .D(STEPS), .FILE(WEIGHT_FILE), .AW(AW)) u_wrom (
                .clk(clk), .en(wen), .addr(waddr), .q(wr));
            wire [PE*TW-1:0] tr;
            if (SCORES == 0) begin : g_trom
                wire [NW-1:0] taddr = load ? {NW{1'b0}} : nf + 1'b1;
                wire ten = load || (step_a && !a_last && a_last_sf);
                cbnn_rom #(.W(PE*TW), .D(NF), .FILE(THRESH_FILE), .AW(NW)) u_trom (
                    .clk(clk), .en(ten), .addr(taddr), .q(tr));
            end else begin : g_notrom
                assign tr = {PE*TW{1'b0}};
            end
            assign wq = wr;
            assign tq = tr;
        end
    endgenerate

    // Datapath (not reset).
    reg [NP-1:0] x;
    reg [PE*CW-1:0] acc;
    reg [MP*BW-1:0] shadow;
    reg [OW-1:0] outr;
    assign m_axis_tdata = outr;
    // The input chunk of this step, as an SF-way multiplexer (indexing x[sf*SIMD +: SIMD]
    // directly makes synthesis build a barrel shifter when SIMD is not a power of two).
    wire [SIMD-1:0] xw [0:SF-1];
    genvar g;
    generate
        for (g = 0; g < SF; g = g + 1) begin : g_chunk
            assign xw[g] = x[g*SIMD +: SIMD];
        end
    endgenerate
    wire [SIMD-1:0] chunk = xw[sf];
    wire [NP-1:0] in_padded;
    generate
        if (NP > N) begin : g_pad
            assign in_padded = {{(NP - N){1'b0}}, s_axis_tdata};
        end else begin : g_nopad
            assign in_padded = s_axis_tdata;
        end
    endgenerate

    // Stage E's view of the step: the same cycle's stage A (PIPE = 0) or the previous one's.
    /* verilator lint_off UNUSED */
    wire [PE*TW-1:0] e_tq;                 // unused when SCORES = 1
    /* verilator lint_on UNUSED */
    generate
        if (PIPE == 0) begin : g_e_comb
            assign e_valid = busy;
            assign e_nf = nf;
            assign e_last_sf = a_last_sf;
            assign e_tq = tq;
        end else begin : g_e_reg
            reg v_r;
            reg [NW-1:0] nf_r;
            reg last_sf_r;
            reg [PE*TW-1:0] tq_r;
            always @(posedge clk) begin
                if (load) begin
                    v_r <= 1'b0;
                end else if (advance) begin
                    v_r <= issue;
                    nf_r <= nf;
                    last_sf_r <= a_last_sf;
                    tq_r <= tq;
                end
            end
            assign e_valid = v_r;
            assign e_nf = nf_r;
            assign e_last_sf = last_sf_r;
            assign e_tq = tq_r;
        end
    endgenerate

    wire [PE*CW-1:0] sum;
    wire [PE*BW-1:0] group;
    genvar p;
    generate
        for (p = 0; p < PE; p = p + 1) begin : g_pe
            wire [SCW-1:0] mis;
            wire [CW-1:0] mis_ext;
            cbnn_popcount #(.W(SIMD), .OW(SCW), .PIPE(PIPE)) u_pop (
                .clk(clk), .en(advance), .in(wq[p*SIMD +: SIMD] ^ chunk), .count(mis));
            if (CW > SCW) begin : g_ext
                assign mis_ext = {{(CW - SCW){1'b0}}, mis};
            end else begin : g_noext
                assign mis_ext = mis;
            end
            assign sum[p*CW +: CW] = acc[p*CW +: CW] + mis_ext;
            if (SCORES) begin : g_score
                assign group[p*BW +: BW] = N_INT[CW-1:0] - sum[p*CW +: CW];
            end else if (TW > CW) begin : g_thresh_wide
                // With constant thresholds a comparison may be constant (U = 0: never fires).
                /* verilator lint_off UNSIGNED */
                /* verilator lint_off CMPCONST */
                assign group[p*BW +: BW] = {1'b0, sum[p*CW +: CW]} < e_tq[p*TW +: TW];
                /* verilator lint_on CMPCONST */
                /* verilator lint_on UNSIGNED */
            end else begin : g_thresh
                /* verilator lint_off UNSIGNED */
                /* verilator lint_off CMPCONST */
                assign group[p*BW +: BW] = sum[p*CW +: CW] < e_tq[p*TW +: TW];
                /* verilator lint_on CMPCONST */
                /* verilator lint_on UNSIGNED */
            end
        end
    endgenerate
    // The results with this neuron fold's group written in (one select per fold).
    wire [MP*BW-1:0] shadow_next;
    generate
        for (g = 0; g < NF; g = g + 1) begin : g_write
            assign shadow_next[g*PE*BW +: PE*BW] =
                (e_nf == g[NW-1:0]) ? group : shadow[g*PE*BW +: PE*BW];
        end
    endgenerate

    always @(posedge clk) begin
        if (!rst_n) begin
            busy <= 1'b0;
            outv <= 1'b0;
        end else begin
            if (outv && m_axis_tready) outv <= 1'b0;
            if (load) begin
                busy <= 1'b1;
            end else if (advance && e_last) begin
                busy <= 1'b0;
                outv <= 1'b1;
            end
        end
    end

    // Stage A.
    always @(posedge clk) begin
        if (load) begin
            x <= in_padded;
            issue <= 1'b1;
            nf <= {NW{1'b0}};
            sf <= {FW{1'b0}};
        end else if (step_a) begin
            if (a_last) begin
                issue <= 1'b0;
            end else if (a_last_sf) begin
                sf <= {FW{1'b0}};
                nf <= nf + 1'b1;
            end else begin
                sf <= sf + 1'b1;
            end
        end
    end

    // Stage E.
    always @(posedge clk) begin
        if (load) begin
            acc <= {PE*CW{1'b0}};
        end else if (advance && e_valid) begin
            if (e_last_sf) begin
                shadow <= shadow_next;
                acc <= {PE*CW{1'b0}};
                if (e_last) outr <= shadow_next[OW-1:0];
            end else begin
                acc <= sum;
            end
        end
    end
endmodule
`default_nettype wire
