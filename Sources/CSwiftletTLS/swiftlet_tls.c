#include "swiftlet_tls.h"
int swt_placeholder(void) { return 0; }
