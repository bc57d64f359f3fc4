/* Layout table exported by abi_layout_c.c (compiled as C11). */
#ifndef VIGIL_TESTS_UNIT_ABI_LAYOUT_C_H_
#define VIGIL_TESTS_UNIT_ABI_LAYOUT_C_H_

#ifdef __cplusplus
extern "C" {
#endif

struct abi_layout_entry {
	const char *name;
	unsigned long value;
};

extern const struct abi_layout_entry kAbiLayoutC[];
extern const unsigned long kAbiLayoutCCount;

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_TESTS_UNIT_ABI_LAYOUT_C_H_ */
