`default_nettype none
// cbnn_fifo: first-in first-out buffer of DEPTH beats between two layers of a pipeline.
//
// Lets a layer hand on beats while the next one is busy, so that stages that work in bursts
// (a sliding-window unit at the end of a row, a dense layer computing on a gathered vector)
// do not stall the stages before them. The generator sizes each FIFO with the cycle model: the
// smallest depth at which the pipeline keeps the initiation interval it would have with a whole
// image of buffering.
//
// s_axis_tready (not full) and m_axis_tvalid (not empty) are functions of the fill count, a
// register: a beat taken in one cycle can leave in the next (latency 1), one beat a cycle
// enters and one leaves (interval 1), and a full FIFO takes a beat again the cycle after one
// has left (so a FIFO of DEPTH 1, full with one beat, passes one every other cycle).
// cbnn-timing: latency=1 interval=1 interval_depth_1=2
module cbnn_fifo #(
    parameter W = 8,                           // bits a beat
    parameter DEPTH = 4,                       // beats held, at least 1
    parameter AW = (DEPTH > 1) ? $clog2(DEPTH) : 1  // address width
) (
    input  wire         clk,
    input  wire         rst_n,                 // synchronous, active low
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
        if (DEPTH < 1) begin : g_check_depth_must_be_at_least_1
            cbnn_parameter_error_depth_must_be_at_least_1 u_error ();
        end
    endgenerate
    localparam CW = $clog2(DEPTH + 1);
    localparam integer LAST = DEPTH - 1;
    localparam integer DEPTH_INT = DEPTH;

    reg [W-1:0]  mem [0:DEPTH-1];
    reg [AW-1:0] wr;
    reg [AW-1:0] rd;
    reg [CW-1:0] count;

    assign s_axis_tready = count != DEPTH_INT[CW-1:0];
    assign m_axis_tvalid = count != {CW{1'b0}};
    assign m_axis_tdata = mem[rd];
    wire push = s_axis_tvalid && s_axis_tready;
    wire pop = m_axis_tvalid && m_axis_tready;

    always @(posedge clk) begin
        if (push) mem[wr] <= s_axis_tdata;
        if (!rst_n) begin
            wr <= {AW{1'b0}};
            rd <= {AW{1'b0}};
            count <= {CW{1'b0}};
        end else begin
            if (push) wr <= (wr == LAST[AW-1:0]) ? {AW{1'b0}} : wr + 1'b1;
            if (pop) rd <= (rd == LAST[AW-1:0]) ? {AW{1'b0}} : rd + 1'b1;
            if (push && !pop) count <= count + 1'b1;
            else if (pop && !push) count <= count - 1'b1;
        end
    end
endmodule
`default_nettype wire
