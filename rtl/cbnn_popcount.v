`default_nettype none
// cbnn_popcount: number of set bits of `in`, as a balanced adder tree.
//
// The tree is built by recursive instantiation, so its depth is ceil(log2(W)) adders. With
// LEAF = 6 its leaves count six bits each by a constant table (each of the three count bits a
// function of six inputs: one LUT6 each) and the adders start from those 3-bit counts; with
// LEAF = 1 every leaf is one bit and every level is an adder (what synthesis maps to carry
// chains from the first level on).
// With PIPE = 0 it is purely combinational: latency 0 cycles. With PIPE = 1 the count is
// registered at the tree's output, loaded on every clock edge with `en` high: latency 1 cycle,
// one result per cycle. `clk` and `en` are unused when PIPE = 0.
module cbnn_popcount #(
    parameter W = 8,                  // input width, at least 1
    parameter OW = $clog2(W + 1),     // output width: enough for the value W
    parameter PIPE = 0,               // output register stages: 0 or 1
    parameter LEAF = 1                // bits a leaf counts: 1 (adders only) or 6 (LUT6 tables)
) (
    /* verilator lint_off UNUSED */
    input  wire          clk,         // clock (PIPE = 1)
    input  wire          en,          // register enable (PIPE = 1)
    /* verilator lint_on UNUSED */
    input  wire [W-1:0]  in,          // bits to count
    output wire [OW-1:0] count        // number of ones in `in`
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (W < 1) begin : g_check_w_must_be_at_least_1
            cbnn_parameter_error_w_must_be_at_least_1 u_error ();
        end
        if (PIPE != 0 && PIPE != 1) begin : g_check_pipe_must_be_0_or_1
            cbnn_parameter_error_pipe_must_be_0_or_1 u_error ();
        end
        if (LEAF != 1 && LEAF != 6) begin : g_check_leaf_must_be_1_or_6
            cbnn_parameter_error_leaf_must_be_1_or_6 u_error ();
        end
        if (OW < $clog2(W + 1)) begin : g_check_ow_too_narrow_for_w
            cbnn_parameter_error_ow_too_narrow_for_w u_error ();
        end
    endgenerate
    wire [OW-1:0] tree;
    generate
        if (W <= 1) begin : g_leaf             // W < 1 is refused above; no recursion then
            assign tree = in;
        end else if (W <= LEAF) begin : g_table
            // The count of up to six bits, looked up: entry i holds the number of ones of i.
            localparam [191:0] POP6 = {
                3'd6, 3'd5, 3'd5, 3'd4, 3'd5, 3'd4, 3'd4, 3'd3, 3'd5, 3'd4, 3'd4, 3'd3, 3'd4, 3'd3, 3'd3, 3'd2,
                3'd5, 3'd4, 3'd4, 3'd3, 3'd4, 3'd3, 3'd3, 3'd2, 3'd4, 3'd3, 3'd3, 3'd2, 3'd3, 3'd2, 3'd2, 3'd1,
                3'd5, 3'd4, 3'd4, 3'd3, 3'd4, 3'd3, 3'd3, 3'd2, 3'd4, 3'd3, 3'd3, 3'd2, 3'd3, 3'd2, 3'd2, 3'd1,
                3'd4, 3'd3, 3'd3, 3'd2, 3'd3, 3'd2, 3'd2, 3'd1, 3'd3, 3'd2, 3'd2, 3'd1, 3'd2, 3'd1, 3'd1, 3'd0
            };
            wire [5:0] index = {{(6 - W){1'b0}}, in};
            /* verilator lint_off UNUSED */
            wire [2:0] c6 = POP6[index * 3 +: 3];  // its top bits are unused below four inputs
            /* verilator lint_on UNUSED */
            if (OW > 3) begin : g_wide
                assign tree = {{(OW - 3){1'b0}}, c6};
            end else begin : g_narrow
                assign tree = c6[OW-1:0];
            end
        end else begin : g_tree
            // With table leaves the low half is a whole number of leaves.
            localparam G = (W + LEAF - 1) / LEAF;  // leaves
            localparam WL = LEAF == 1 ? W / 2 : LEAF * (G / 2); // low half
            localparam WH = W - WL;                // high half (the larger one with LEAF = 1)
            localparam OL = $clog2(WL + 1);
            localparam OH = $clog2(WH + 1);
            wire [OL-1:0] cl;
            wire [OH-1:0] ch;
            cbnn_popcount #(.W(WL), .OW(OL), .LEAF(LEAF)) u_lo (.clk(clk), .en(en), .in(in[WL-1:0]), .count(cl));
            cbnn_popcount #(.W(WH), .OW(OH), .LEAF(LEAF)) u_hi (.clk(clk), .en(en), .in(in[W-1:WL]), .count(ch));
            wire [OW-1:0] el;                      // halves zero-extended to OW bits
            wire [OW-1:0] eh;
            if (OW > OL) begin : g_el
                assign el = {{(OW - OL){1'b0}}, cl};
            end else begin : g_el_same
                assign el = cl;
            end
            if (OW > OH) begin : g_eh
                assign eh = {{(OW - OH){1'b0}}, ch};
            end else begin : g_eh_same
                assign eh = ch;
            end
            assign tree = el + eh;
        end
        if (PIPE == 0) begin : g_comb
            assign count = tree;
        end else begin : g_reg
            reg [OW-1:0] r;
            always @(posedge clk) begin
                if (en) r <= tree;
            end
            assign count = r;
        end
    endgenerate
endmodule
`default_nettype wire
