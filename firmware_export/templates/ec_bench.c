/* Marker functions around one inference, for counting executed instructions
 * under QEMU (make insns). A separate file so the compiler cannot inline them;
 * the volatile store gives each a body of its own. */
#include "ec_bench.h"

static volatile int ec_bench_state;

void ec_bench_begin(void)
{
    ec_bench_state = 1;
}

void ec_bench_end(void)
{
    ec_bench_state = 0;
}

/* Called after each layer when the model is compiled with -DEC_BENCH_LAYERS
   (benchmarks/bench_mcu.py counts instructions per layer with it). */
void ec_bench_layer(void)
{
    ec_bench_state = 2;
}
