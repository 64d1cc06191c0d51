#include "xpio_openssl.h"
