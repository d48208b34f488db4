`default_nettype none
// cbnn_lut: a layer of M sparse truth-table neurons (a "lut" layer of the model file).
//
// Neuron j reads F of the N inputs, those whose indices CONN gives, and outputs bit a of its
// table, where a holds its inputs (input i in bit i). The tables are constants, so every neuron
// is one F-input boolean function: synthesis maps it to one LUT (one LUT6 of a 7-series FPGA
// for F <= 6, a few LUT4s on iCE40). Purely combinational: latency 0 cycles.
module cbnn_lut #(
    parameter N = 8,                        // inputs, at least 1
    parameter M = 4,                        // neurons, at least 1
    parameter F = 2,                        // inputs a neuron reads, 1 to 6
    parameter AW = 3,                       // bits of a connection index: 2^AW >= N
    parameter [M*F*AW-1:0] CONN = 0,        // input i of neuron j is x[CONN[(j*F+i)*AW +: AW]]
    parameter [M*(1<<F)-1:0] TABLES = 0     // table of neuron j in bits [j*2^F +: 2^F]
) (
    input  wire [N-1:0] x,                  // the values the layer receives (1 = +1)
    output wire [M-1:0] y                   // neuron j's output in bit j (1 = +1)
);
    // Elaboration-time parameter checks: an impossible value instantiates a module that does
    // not exist, so every tool stops and names the instance and the violated rule.
    genvar j, i;
    generate
        if (N < 1) begin : g_check_n_must_be_at_least_1
            cbnn_parameter_error_n_must_be_at_least_1 u_error ();
        end
        if (M < 1) begin : g_check_m_must_be_at_least_1
            cbnn_parameter_error_m_must_be_at_least_1 u_error ();
        end
        if (F < 1 || F > 6) begin : g_check_f_must_be_1_to_6
            cbnn_parameter_error_f_must_be_1_to_6 u_error ();
        end
        if ((1 << AW) < N) begin : g_check_aw_too_narrow_for_n
            cbnn_parameter_error_aw_too_narrow_for_n u_error ();
        end
        for (j = 0; j < M; j = j + 1) begin : g_neuron
            wire [F-1:0] a;                      // the table address
            wire [(1<<F)-1:0] t = TABLES[j*(1<<F) +: (1<<F)];
            for (i = 0; i < F; i = i + 1) begin : g_input
                localparam [AW:0] SRC = {1'b0, CONN[(j*F+i)*AW +: AW]};
                if (SRC >= N[AW:0]) begin : g_check_conn_must_be_below_n
                    cbnn_parameter_error_conn_must_be_below_n u_error ();
                end else begin : g_wire
                    assign a[i] = x[CONN[(j*F+i)*AW +: AW]];
                end
            end
            assign y[j] = t[a];
        end
    endgenerate
endmodule
`default_nettype wire
