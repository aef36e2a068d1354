int sws_placeholder(void) { return 0; }
