`default_nettype none
// cbnn_pipe: one register stage of a logic-mapped pipeline: W data bits and their valid flag,
// loaded on every clock edge with `en` high and held otherwise.
//
// A logic-mapped design is a chain of these with the combinational layers (cbnn_lut, the group
// sums) between them, every stage enabled by the same `en`: the registered s_axis_tready of the
// output register slice (cbnn_skid). The chain then moves one beat a cycle while the slice has
// room and stands still as a whole when it has none, so its initiation interval is 1 cycle
// and its latency one cycle a stage. Data bits have no reset and need no multiplexer: a
// flip-flop's clock enable holds them.
module cbnn_pipe #(
    parameter W = 8                         // data width, at least 1
) (
    input  wire         clk,
    input  wire         rst_n,              // synchronous, active low (the valid flag only)
    input  wire         en,                 // load this cycle
    input  wire [W-1:0] d,
    input  wire         d_valid,
    output reg  [W-1:0] q,
    output reg          q_valid
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (W < 1) begin : g_check_w_must_be_at_least_1
            cbnn_parameter_error_w_must_be_at_least_1 u_error ();
        end
    endgenerate
    always @(posedge clk) begin
        if (!rst_n) begin
            q_valid <= 1'b0;
        end else if (en) begin
            q_valid <= d_valid;
        end
    end

    always @(posedge clk) begin
        if (en) begin
            q <= d;
        end
    end
endmodule
`default_nettype wire
