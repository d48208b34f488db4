`default_nettype none
// cbnn_argmax: index of the largest of C unsigned scores, the lowest index on ties.
//
// Purely combinational: latency 0 cycles. A chain of C-1 comparators.
module cbnn_argmax #(
    parameter C = 10,                       // number of scores, at least 2
    parameter SW = 8,                       // width of one score
    parameter IW = (C > 2) ? $clog2(C) : 1  // width of the index
) (
    input  wire [C*SW-1:0] scores,          // score c in bits [c*SW +: SW]
    output reg  [IW-1:0]   index            // argmax, ties to the lowest index
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (C < 2) begin : g_check_c_must_be_at_least_2
            cbnn_parameter_error_c_must_be_at_least_2 u_error ();
        end
        if (SW < 1) begin : g_check_sw_must_be_at_least_1
            cbnn_parameter_error_sw_must_be_at_least_1 u_error ();
        end
    endgenerate
    integer c;
    reg [SW-1:0] best;
    always @* begin
        best = scores[SW-1:0];
        index = {IW{1'b0}};
        for (c = 1; c < C; c = c + 1) begin
            if (scores[c*SW +: SW] > best) begin
                best = scores[c*SW +: SW];
                index = c[IW-1:0];
            end
        end
    end
endmodule
`default_nettype wire
