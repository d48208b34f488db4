`default_nettype none
// cbnn_split: hands on the pixels of input beats of PPB pixels one a beat.
//
// The input of a convolutional pipeline: an image of N pixels arrives as ceil(N / PPB) beats,
// pixel p in bits [(p % PPB) * PW +: PW] of beat p / PPB (the design's input packing); the last
// beat of an image may be partly padding, which is dropped. The unit holds one beat and hands
// on its pixels in order, one a cycle while the sink is ready; it takes the next beat the
// cycle after the last pixel of the one it holds has left, so s_axis_tready and m_axis_tvalid
// are registers (PPB pixels take at least PPB + 1 cycles).
// cbnn-timing: latency=1 interval=1
module cbnn_split #(
    parameter PPB = 2,                          // pixels a beat, at least 1
    parameter PW = 8,                           // bits a pixel
    parameter N = 16,                           // pixels an image, at least 1
    parameter IW = PPB * PW                     // bits a beat
) (
    input  wire          clk,
    input  wire          rst_n,                 // synchronous, active low
    input  wire [IW-1:0] s_axis_tdata,
    input  wire          s_axis_tvalid,
    output wire          s_axis_tready,
    output wire [PW-1:0] m_axis_tdata,
    output wire          m_axis_tvalid,
    input  wire          m_axis_tready
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (PPB < 1 || PW < 1 || N < 1) begin : g_check_ppb_pw_n_must_be_at_least_1
            cbnn_parameter_error_ppb_pw_n_must_be_at_least_1 u_error ();
        end
    endgenerate
    localparam SW = (PPB > 1) ? $clog2(PPB) : 1;
    localparam NW = (N > 1) ? $clog2(N) : 1;
    localparam integer S_LAST = PPB - 1;
    localparam integer N_LAST = N - 1;

    reg [IW-1:0] beat;
    reg          holding;
    reg [SW-1:0] slot;                          // the pixel of the beat on the output
    reg [NW-1:0] pixel;                         // its index in the image

    assign s_axis_tready = !holding;
    assign m_axis_tvalid = holding;
    wire take = s_axis_tvalid && !holding;
    wire give = holding && m_axis_tready;
    wire beat_done = slot == S_LAST[SW-1:0] || pixel == N_LAST[NW-1:0];

    generate
        if (PPB == 1) begin : g_one
            assign m_axis_tdata = beat;
        end else begin : g_many
            assign m_axis_tdata = beat[slot*PW +: PW];
        end
    endgenerate

    always @(posedge clk) begin
        if (take) beat <= s_axis_tdata;
        if (!rst_n) begin
            holding <= 1'b0;
            slot <= {SW{1'b0}};
            pixel <= {NW{1'b0}};
        end else begin
            if (take) holding <= 1'b1;
            if (give) begin
                pixel <= (pixel == N_LAST[NW-1:0]) ? {NW{1'b0}} : pixel + 1'b1;
                if (beat_done) begin
                    holding <= 1'b0;
                    slot <= {SW{1'b0}};
                end else begin
                    slot <= slot + 1'b1;
                end
            end
        end
    end
endmodule
`default_nettype wire
