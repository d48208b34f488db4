# SDC timing constraints for {{TOP}} (Quartus, OpenSTA and other SDC flows), written by
# cbnn rtl: {{MHZ}} MHz. One synchronous clock domain; the I/O delays budget half a period to
# logic on the other side of the AXI4-Stream ports.
create_clock -name ap_clk -period {{PERIOD_NS}} [get_ports ap_clk]
set_input_delay -clock ap_clk {{HALF_PERIOD_NS}} [get_ports {ap_rst_n s_axis_tdata[*] s_axis_tvalid m_axis_tready}]
set_output_delay -clock ap_clk {{HALF_PERIOD_NS}} [get_ports {s_axis_tready m_axis_tdata[*] m_axis_tvalid}]
