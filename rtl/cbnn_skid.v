`default_nettype none
// cbnn_skid: two-entry AXI4-Stream register slice (skid buffer).
//
// Registers data, valid and ready in both directions: m_axis_tvalid and s_axis_tready come from flip-flops,
// so no combinational path crosses the buffer. Latency 1 cycle; initiation interval 1 cycle
// (a beat every cycle while the sink is ready). When the sink stalls, one more beat is caught
// in the skid register and s_axis_tready drops the next cycle.
module cbnn_skid #(
    parameter W = 8                    // data width
) (
    input  wire         clk,
    input  wire         rst_n,         // synchronous, active low (valid flags only)
    input  wire [W-1:0] s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    output wire [W-1:0] m_axis_tdata,
    output wire         m_axis_tvalid,
    input  wire         m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (W < 1) begin : g_check_w_must_be_at_least_1
            cbnn_parameter_error_w_must_be_at_least_1 u_error ();
        end
    endgenerate
    reg [W-1:0] main_d;                // datapath: not reset
    reg [W-1:0] skid_d;
    reg main_v;
    reg skid_v;
    wire take = m_axis_tready || !main_v;    // the output register can be (re)loaded this cycle
    assign s_axis_tready = !skid_v;
    assign m_axis_tvalid = main_v;
    assign m_axis_tdata = main_d;

    always @(posedge clk) begin
        if (!rst_n) begin
            main_v <= 1'b0;
            skid_v <= 1'b0;
        end else if (take) begin
            if (skid_v) begin
                main_v <= 1'b1;
                skid_v <= 1'b0;
            end else begin
                main_v <= s_axis_tvalid;
            end
        end else if (s_axis_tvalid && !skid_v) begin
            skid_v <= 1'b1;
        end
    end

    always @(posedge clk) begin
        if (take) begin
            main_d <= skid_v ? skid_d : s_axis_tdata;
        end else if (s_axis_tvalid && !skid_v) begin
            skid_d <= s_axis_tdata;
        end
    end
endmodule
`default_nettype wire
