/* Cortex-M startup for QEMU's MPS2 boards with newlib semihosting (rdimon).
 * The vector table gives the initial stack and the reset handler; the reset
 * handler enables the FPU (hard-float builds), copies .data from flash to RAM
 * (newlib's crt0 does not) and jumps to newlib's `_start`, which clears .bss,
 * fetches argv through semihosting and calls main(). A fault prints a line and
 * exits QEMU with status 1 instead of locking up. GNU C (register asm). */
#include <stdint.h>

extern uint32_t __stack_top, __data_load__, __data_start__, __data_end__;
extern void _start(void);

void Reset_Handler(void);
void Fault_Handler(void);

static void semihosting(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void Fault_Handler(void)
{
    semihosting(0x04u, "FAULT: Cortex-M exception\n");     /* SYS_WRITE0 */
    semihosting(0x18u, (const void *)0x20023u);            /* SYS_EXIT: run-time error */
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *from = &__data_load__;
    uint32_t *to = &__data_start__;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    while (to < &__data_end__) {
        *to++ = *from++;
    }
    _start();
}

__attribute__((section(".vectors"), used))
static void (*const vector_table[16])(void) = {
    (void (*)(void))&__stack_top, Reset_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, /* NMI..Usage */
    0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};
