`default_nettype none
// cbnn_rom: read-only memory initialised from a $readmemh image, with a registered read port.
//
// q holds word `addr` from the clock edge after one with `en` high (latency 1 cycle, one read
// a cycle). Memories of BLOCK_MIN_DEPTH words or more carry rom_style/ram_style "block", so
// Yosys and Vivado map them to block RAM even where LUTs would look cheaper to them (a wide,
// shallow weight memory does); smaller ones are left to the synthesis tool.
module cbnn_rom #(
    parameter W = 8,                       // word width
    parameter D = 16,                      // depth (words)
    parameter FILE = "",                   // $readmemh image: D words of W bits ("" leaves the
                                           // memory uninitialised: for elaboration only)
    parameter AW = (D > 1) ? $clog2(D) : 1, // address width
    parameter BLOCK_MIN_DEPTH = 64         // depth from which block RAM is asked for
) (
    input  wire          clk,
    input  wire          en,               // read enable
    input  wire [AW-1:0] addr,             // word to read, below D
    output wire [W-1:0]  q                 // the word read at the last enabled edge
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    generate
        if (W < 1) begin : g_check_w_must_be_at_least_1
            cbnn_parameter_error_w_must_be_at_least_1 u_error ();
        end
        if (D < 1) begin : g_check_d_must_be_at_least_1
            cbnn_parameter_error_d_must_be_at_least_1 u_error ();
        end
    endgenerate
    reg [W-1:0] r;
    assign q = r;
    generate
        if (D >= BLOCK_MIN_DEPTH) begin : g_block
            (* rom_style = "block", ram_style = "block" *)
            reg [W-1:0] mem [0:D-1];
            if (FILE != "") begin : g_init
                initial $readmemh(FILE, mem);
            end
            always @(posedge clk) begin
                if (en) r <= mem[addr];
            end
        end else begin : g_auto
            reg [W-1:0] mem [0:D-1];
            if (FILE != "") begin : g_init
                initial $readmemh(FILE, mem);
            end
            always @(posedge clk) begin
                if (en) r <= mem[addr];
            end
        end
    endgenerate
endmodule
`default_nettype wire
