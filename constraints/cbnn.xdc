# Vivado timing constraints for {{TOP}}, written by cbnn rtl: {{MHZ}} MHz.
# The accelerator is one synchronous clock domain; its AXI4-Stream ports are meant to connect to
# logic on the same clock, so the I/O delays below budget half a period to the other side.
# Replace them with your board's numbers when the ports go to pins.
create_clock -name ap_clk -period {{PERIOD_NS}} [get_ports ap_clk]
set_input_delay -clock ap_clk {{HALF_PERIOD_NS}} [get_ports {ap_rst_n s_axis_tdata[*] s_axis_tvalid m_axis_tready}]
set_output_delay -clock ap_clk {{HALF_PERIOD_NS}} [get_ports {s_axis_tready m_axis_tdata[*] m_axis_tvalid}]
