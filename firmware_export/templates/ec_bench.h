#ifndef EC_BENCH_H
#define EC_BENCH_H
void ec_bench_begin(void);
void ec_bench_end(void);
void ec_bench_layer(void);
#endif
