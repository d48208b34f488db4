`default_nettype none
// cbnn_pool: streaming binary max-pool, P x P windows, stride P.
//
// Takes the pixels of H x W images in raster order, one C-bit pixel a beat (1 = +1), and hands
// on the HO x WO = floor(H / P) x floor(W / P) pooled pixels in raster order: bit c of output
// (y, x) is the OR of bit c over input rows y * P .. y * P + P - 1 and columns x * P .. x * P +
// P - 1 (the maximum of ±1 values). Rows and columns past the last whole window are taken and
// dropped.
//
// How: a queue of WO partial results (one per window of the current window row) is rotated
// once per window: the pixel that ends a window's columns in an input row ORs the partial
// result at the head with the row's pixels of that window and puts it at the tail, so no
// position is ever addressed. The pixel that ends the window's last row copies the result into
// the output register instead. A pixel that ends a window is taken only while the output
// register is empty, so s_axis_tready and m_axis_tvalid are functions of registers only.
//
// Timing: an output is valid the cycle after the input beat that ends its window (latency 1);
// outputs come at least P cycles apart; free-running an image takes H * W cycles:
// cbnn-timing: latency=1 interval=P image=H*W
module cbnn_pool #(
    parameter H = 8,               // image rows
    parameter W = 8,               // image columns
    parameter C = 4,               // bits (channels) per pixel
    parameter P = 2                // window side and stride, at least 2
) (
    input  wire         clk,
    input  wire         rst_n,     // synchronous, active low
    input  wire [C-1:0] s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    output wire [C-1:0] m_axis_tdata,
    output wire         m_axis_tvalid,
    input  wire         m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (C < 1) begin : g_check_c_must_be_at_least_1
            cbnn_parameter_error_c_must_be_at_least_1 u_error ();
        end
        if (P < 2 || P > H || P > W) begin : g_check_p_must_be_2_to_the_image_side
            cbnn_parameter_error_p_must_be_2_to_the_image_side u_error ();
        end
    endgenerate
    localparam integer WO = W / P;
    localparam integer Y_LAST = H - 1;
    localparam integer X_LAST = W - 1;
    localparam integer Y_KEEP = (H / P) * P;   // rows from here on are dropped
    localparam integer X_KEEP = WO * P;        // columns from here on are dropped
    localparam integer S_LAST = P - 1;
    localparam YW = $clog2(H + 1);
    localparam XW = $clog2(W + 1);
    localparam SW = $clog2(P + 1);

    reg  [YW-1:0] y;               // position of the next input beat
    reg  [XW-1:0] x;
    reg  [SW-1:0] sy;              // y % P and x % P
    reg  [SW-1:0] sx;
    reg  [C-1:0]  row_or;          // OR of the current row's pixels of the current window
    reg  [C*WO-1:0] queue;         // partial results, head at [C-1:0]
    reg           out_valid;
    reg  [C-1:0]  out_data;

    wire kept = y < Y_KEEP[YW-1:0] && x < X_KEEP[XW-1:0];
    wire ends_cols = kept && sx == S_LAST[SW-1:0];
    wire ends_window = ends_cols && sy == S_LAST[SW-1:0];
    assign s_axis_tready = !ends_window || !out_valid;
    wire take = s_axis_tvalid && s_axis_tready;
    // The window's value so far, this pixel included.
    wire [C-1:0] head = (sy == {SW{1'b0}}) ? {C{1'b0}} : queue[C-1:0];
    wire [C-1:0] value = head | row_or | s_axis_tdata;
    wire [C*WO-1:0] rotated;       // the queue with its head replaced by `value` at the tail
    generate
        if (WO > 1) begin : g_queue
            assign rotated = {value, queue[C*WO-1:C]};
        end else begin : g_single
            assign rotated = value;
        end
    endgenerate

    always @(posedge clk) begin
        if (take && kept) begin
            if (ends_cols) begin
                row_or <= {C{1'b0}};
                queue <= rotated;
            end else begin
                row_or <= row_or | s_axis_tdata;
            end
        end
        if (take && ends_window) out_data <= value;
        if (!rst_n) begin
            y <= {YW{1'b0}};
            x <= {XW{1'b0}};
            sy <= {SW{1'b0}};
            sx <= {SW{1'b0}};
            out_valid <= 1'b0;
            row_or <= {C{1'b0}};
        end else begin
            if (take) begin
                if (x == X_LAST[XW-1:0]) begin
                    x <= {XW{1'b0}};
                    sx <= {SW{1'b0}};
                    if (y == Y_LAST[YW-1:0]) begin
                        y <= {YW{1'b0}};
                        sy <= {SW{1'b0}};
                    end else begin
                        y <= y + 1'b1;
                        sy <= (sy == S_LAST[SW-1:0]) ? {SW{1'b0}} : sy + 1'b1;
                    end
                end else begin
                    x <= x + 1'b1;
                    sx <= (sx == S_LAST[SW-1:0]) ? {SW{1'b0}} : sx + 1'b1;
                end
            end
            if (take && ends_window) out_valid <= 1'b1;
            else if (m_axis_tready) out_valid <= 1'b0;
        end
    end
    assign m_axis_tdata = out_data;
    assign m_axis_tvalid = out_valid;
endmodule
`default_nettype wire
