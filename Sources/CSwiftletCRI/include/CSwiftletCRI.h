/* The protoc-c messages of runtime.v1, for the CRIProtobufC target only. Deprecated CRI
   fields are still decoded and encoded (old clients send them), so the deprecation
   attributes are dropped here. */
#ifndef CSWIFTLET_CRI_H
#define CSWIFTLET_CRI_H
#ifndef PROTOBUF_C__NO_DEPRECATED
#define PROTOBUF_C__NO_DEPRECATED 1
#endif
#include "runtime/v1/api.pb-c.h"
#endif
