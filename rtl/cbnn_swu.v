`default_nettype none
// cbnn_swu: sliding-window unit of a binary convolution (k x k windows, stride 1).
//
// Takes the pixels of H x W images in raster order, one C-bit pixel a beat (bit c = channel c,
// 1 = +1), and hands on, in raster order of the output positions, the window of every output
// position: K * K * C bits, element (dy * K + dx) * C + c = value (y + dy - P, x + dx - P, c),
// the window order of the model file. With PAD = 1 ("same", odd K) P = (K - 1) / 2 and a
// position outside the image is -1 (a zero bit); with PAD = 0 ("valid") P = 0 and the output is
// (H - K + 1) x (W - K + 1).
//
// How: the unit walks the padded image of HP x WP positions in raster order and shifts one
// position a cycle into a shift register of (K - 1) rows plus K - 1 positions (the line buffers);
// a padding position shifts in a zero without an input beat, an image position waits for one.
// Once K - 1 rows and K positions of a row are in, the register's taps are the window of
// output position (py - K + 1, px - K + 1), and it is copied into the output register. A
// position that completes a window shifts only while the output register is empty, so
// s_axis_tready and m_axis_tvalid are registers or functions of registers only. After the
// last position of an image the walk starts the next image: nothing is flushed, the first
// window of an image needs K - 1 of its own rows.
//
// Timing: a window is valid the cycle after the shift that completes it (latency 1) and at
// most every other cycle (the output register empties in the cycle it is consumed, the next
// window shifts in the cycle after). Free-running with a sink that is always ready, an image
// takes HP * WP + HO * (WO - 1) cycles for K > 1 and 2 * H * W for K = 1, where HO = HP - K + 1
// and WO = WP - K + 1 are the output rows and columns:
// cbnn-timing: latency=1 interval=2 image=(K>1)?(HP*WP+HO*(WO-1)):(2*H*W)
module cbnn_swu #(
    parameter H = 8,                     // image rows
    parameter W = 8,                     // image columns
    parameter C = 4,                     // bits (channels) per pixel
    parameter K = 3,                     // window side
    parameter PAD = 1,                   // 1: "same" (odd K, -1 outside the image); 0: "valid"
    parameter P = (PAD == 1) ? (K - 1) / 2 : 0, // padding positions on each side
    parameter HP = H + 2 * P,            // rows of the padded image
    parameter WP = W + 2 * P,            // columns of the padded image
    parameter L = (K - 1) * WP + K,      // positions from a window's first to its last
    parameter WB = K * K * C             // window bits
) (
    input  wire          clk,
    input  wire          rst_n,          // synchronous, active low
    input  wire [C-1:0]  s_axis_tdata,
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    output wire [WB-1:0] m_axis_tdata,
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (H < 1 || W < 1 || C < 1) begin : g_check_h_w_c_must_be_at_least_1
            cbnn_parameter_error_h_w_c_must_be_at_least_1 u_error ();
        end
        if (PAD != 0 && PAD != 1) begin : g_check_pad_must_be_0_or_1
            cbnn_parameter_error_pad_must_be_0_or_1 u_error ();
        end
        if (K < 1 || (PAD == 1 && K % 2 == 0)) begin : g_check_k_must_be_odd_with_same
            cbnn_parameter_error_k_must_be_at_least_1_and_odd_with_same u_error ();
        end
        if (PAD == 0 && (K > H || K > W)) begin : g_check_valid_k_must_fit_the_image
            cbnn_parameter_error_valid_k_must_fit_the_image u_error ();
        end
    endgenerate
    localparam YW = $clog2(HP + 1);
    localparam XW = $clog2(WP + 1);
    localparam integer Y_LAST = HP - 1;
    localparam integer X_LAST = WP - 1;
    localparam integer Y_FIRST = P;      // first row and column of the image
    localparam integer Y_END = P + H;    // one past its last row
    localparam integer X_END = P + W;    // one past its last column
    localparam integer DONE_AT = K - 1;  // first row and column that complete a window

    reg  [YW-1:0]  py;                   // padded position of the next shift
    reg  [XW-1:0]  px;
    reg            out_valid;
    reg  [WB-1:0]  out_data;

    // Whether (py, px) is inside the image and whether it completes a window, without
    // comparisons that are constant for some parameters.
    wire in_rows, in_cols, row_done, col_done;
    generate
        if (P == 0) begin : g_no_pad
            assign in_rows = 1'b1;
            assign in_cols = 1'b1;
        end else begin : g_pad
            assign in_rows = py >= Y_FIRST[YW-1:0] && py < Y_END[YW-1:0];
            assign in_cols = px >= Y_FIRST[XW-1:0] && px < X_END[XW-1:0];
        end
        if (K == 1) begin : g_k1
            assign row_done = 1'b1;
            assign col_done = 1'b1;
        end else begin : g_kn
            assign row_done = py >= DONE_AT[YW-1:0];
            assign col_done = px >= DONE_AT[XW-1:0];
        end
    endgenerate
    wire in_image = in_rows && in_cols;
    wire completes = row_done && col_done;
    wire slot = !completes || !out_valid;
    assign s_axis_tready = in_image && slot;
    wire shift = slot && (!in_image || s_axis_tvalid);
    wire [C-1:0] pixel = in_image ? s_axis_tdata : {C{1'b0}};

    // The last L positions after this cycle's shift, newest first: next_sr[i * C +: C] is the
    // position shifted in i shifts before this one. The register keeps the L - 1 newest.
    wire [C*L-1:0] next_sr;
    generate
        if (L == 1) begin : g_one
            assign next_sr = pixel;
        end else begin : g_many
            reg [C*(L-1)-1:0] sr;
            assign next_sr = {sr, pixel};
            always @(posedge clk) if (shift) sr <= next_sr[C*(L-1)-1:0];
        end
    endgenerate

    // The window of the register after this cycle's shift.
    wire [WB-1:0] window;
    genvar dy, dx;
    generate
        for (dy = 0; dy < K; dy = dy + 1) begin : g_row
            for (dx = 0; dx < K; dx = dx + 1) begin : g_col
                assign window[(dy*K+dx)*C +: C] = next_sr[((K-1-dy)*WP + (K-1-dx))*C +: C];
            end
        end
    endgenerate

    always @(posedge clk) begin
        if (shift && completes) out_data <= window;
        if (!rst_n) begin
            py <= {YW{1'b0}};
            px <= {XW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (shift) begin
                if (px == X_LAST[XW-1:0]) begin
                    px <= {XW{1'b0}};
                    py <= (py == Y_LAST[YW-1:0]) ? {YW{1'b0}} : py + 1'b1;
                end else begin
                    px <= px + 1'b1;
                end
            end
            if (shift && completes) out_valid <= 1'b1;
            else if (m_axis_tready) out_valid <= 1'b0;
        end
    end
    assign m_axis_tdata = out_data;
    assign m_axis_tvalid = out_valid;
endmodule
`default_nettype wire
