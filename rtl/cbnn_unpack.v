`default_nettype none
// cbnn_unpack: gathers the beats of one image from an AXI4-Stream input into one feature vector.
//
// Each beat carries PPB pixels of K kept planes (PPB * K bits, feature order of the model: bit
// j of a beat is feature beat_index * PPB * K + j); the last beat is zero-padded. A full vector
// is held until the next stage takes it, and no beat is accepted meanwhile. Beats shift in from
// the top, so after BEATS beats the first one sits at the bottom: no decoder, no write
// multiplexer, only flip-flops with a shared enable.
// Latency: the vector is valid the cycle after its last beat is accepted.
// Initiation interval: BEATS + 1 cycles (BEATS beats, then one cycle to hand the vector over).
module cbnn_unpack #(
    parameter N = 64,                     // features per image (pixels * K)
    parameter IW = 8,                     // beat width (PPB * K)
    parameter BEATS = (N + IW - 1) / IW,  // beats per image
    parameter CW = (BEATS > 1) ? $clog2(BEATS) : 1  // beat counter width
) (
    input  wire          clk,
    input  wire          rst_n,           // synchronous, active low
    input  wire [IW-1:0] s_axis_tdata,         // one beat
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    output wire [N-1:0]  m_axis_tdata,        // the image's features
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (N < 1) begin : g_check_n_must_be_at_least_1
            cbnn_parameter_error_n_must_be_at_least_1 u_error ();
        end
        if (IW < 1) begin : g_check_iw_must_be_at_least_1
            cbnn_parameter_error_iw_must_be_at_least_1 u_error ();
        end
    endgenerate
    localparam integer LAST = BEATS - 1;  // index of the last beat
    reg [BEATS*IW-1:0] vec;               // datapath: not reset
    reg [CW-1:0] cnt;
    reg full;
    assign s_axis_tready = !full;
    assign m_axis_tvalid = full;
    assign m_axis_tdata = vec[N-1:0];
    /* verilator lint_off UNUSED */
    wire [BEATS*IW-1:0] unused_padding = vec;  // bits past N are padding of the last beat
    /* verilator lint_on UNUSED */

    always @(posedge clk) begin
        if (!rst_n) begin
            cnt <= {CW{1'b0}};
            full <= 1'b0;
        end else begin
            if (s_axis_tvalid && !full) begin
                if (cnt == LAST[CW-1:0]) begin
                    cnt <= {CW{1'b0}};
                    full <= 1'b1;
                end else begin
                    cnt <= cnt + 1'b1;
                end
            end
            if (full && m_axis_tready) full <= 1'b0;
        end
    end
    generate
        if (BEATS > 1) begin : g_shift
            always @(posedge clk) begin
                if (s_axis_tvalid && !full) vec <= {s_axis_tdata, vec[BEATS*IW-1:IW]};
            end
        end else begin : g_one
            always @(posedge clk) begin
                if (s_axis_tvalid && !full) vec <= s_axis_tdata;
            end
        end
    endgenerate
endmodule
`default_nettype wire
