/* Private: the readers' entry points for bytes in memory, for the fuzz
 * targets (tests/fuzz/) and tests. Not exported. */
#ifndef SYN_DATA_PARSE_MEM_H
#define SYN_DATA_PARSE_MEM_H

#include <stddef.h>
#include "synapse/data.h"

/* syn_dataset_load_csv on size bytes at data (NULs included: they are data);
 * name stands for the file name in messages. data is borrowed for the call. */
syn_status syn__dataset_load_csv_mem(const void *data, size_t size, const char *name, const syn_csv_opts *opts,
                                     syn_dataset **out);

#endif
