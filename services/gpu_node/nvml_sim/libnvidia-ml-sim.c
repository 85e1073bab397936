/*
 * SIMULATED NVML: a stand-in for NVIDIA's libnvidia-ml.so.1 for machines without a GPU.
 *
 * It implements only the NVML calls the Gridlease inventory makes, with the same C signatures,
 * so the real nvidia-ml-py bindings run unchanged against it. Written for Gridlease from the
 * public NVML API reference; it shares no code with NVIDIA's library.
 *
 * Configuration, read at every nvmlInit that opens a session (none was open: real NVML is
 * thread-safe, and a second thread's nvmlInit must not rebuild the devices a first thread is
 * querying):
 *   GRIDLEASE_SIM_GPUS         "h100:8" or "a100:2,t4:1" (profiles: h100 a100 l40s t4 rtx4090)
 *   GRIDLEASE_SIM_SEED         any string; changes the UUIDs (two simulated machines on one host)
 *   GRIDLEASE_SIM_UNSUPPORTED  comma list of fields answering NVML_ERROR_NOT_SUPPORTED:
 *                              utilization, temperature, power, power_limit, mig,
 *                              compute_capability, ecc, remapped_rows
 *   GRIDLEASE_SIM_UTILIZATION  GPU utilisation in percent reported by every device (default 0)
 *
 * Hardware faults, each a comma list of board positions (0-based over GRIDLEASE_SIM_GPUS, so
 * "3" is the fourth board whatever else is configured):
 *   GRIDLEASE_SIM_ABSENT       boards gone from the bus: not enumerated at all, so the boards
 *                              after them move down one NVML index (as on a real machine)
 *   GRIDLEASE_SIM_LOST         boards that fell off the bus while enumerated: every query on
 *                              them answers NVML_ERROR_GPU_IS_LOST
 *   GRIDLEASE_SIM_MIG          boards in MIG mode (current and pending); only MIG-capable
 *                              profiles (h100, a100), any other fails nvmlInit
 *   GRIDLEASE_SIM_XID          XID errors, "position:xid" comma list (e.g. "1:79,1:48"): each
 *                              event set that registered the board for XID critical errors
 *                              receives them once, in order (nvmlEventSetWait_v2)
 *   GRIDLEASE_SIM_ECC          boards with one uncorrectable ECC error in the volatile counter
 *                              (nvmlDeviceGetTotalEccErrors; boards without ECC ignore it)
 *   GRIDLEASE_SIM_REMAP        boards whose row remapping failed (nvmlDeviceGetRemappedRows
 *                              failureOccurred; only boards that remap rows, h100 and a100)
 * A board's UUID and PCI bus id come from its position, not its NVML index, so they stay put
 * when an earlier board is absent.
 *
 * Faults injected while the library is in use (a running agent keeps an NVML session open for
 * its XID watcher, so the variables above are never read again):
 *   GRIDLEASE_SIM_FAULT_FILE   a file holding fault text, "lost=3;ecc=1;remap=0;xid=2:79,2:13"
 *                              (kinds lost, ecc, remap, xid; separated by ';' or white space).
 *                              Every device query and every event wait looks at the
 *                              file's inode, size and mtime and reads it again when they
 *                              changed, so replace it atomically (write, then rename). Its
 *                              faults add to those of the variables; a missing or empty file
 *                              adds none. XIDs are events: each event set delivers each entry
 *                              once, by its place in the list, so a later version of the file
 *                              keeps the earlier XIDs in front and appends new ones. A malformed
 *                              file is reported once on stderr and changes nothing.
 *                              (`simulation.write_fault_file` validates and writes it.)
 *
 * Build flags: -DSIM_OMIT_MIG_MODE leaves nvmlDeviceGetMigMode out, so a test can see how the
 * inventory meets a driver that lacks a function.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_UNKNOWN = 999,
};

#define MAX_DEVICES 64
#define MAX_XIDS 64
#define FAULT_TEXT_MAX 4096
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0
#define XID_CRITICAL_ERROR 0x8ULL /* nvmlEventTypeXidCriticalError */
#define EXPORT __attribute__((visibility("default")))

typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;

typedef struct {
    const char *key;
    const char *name;
    unsigned long long memory_bytes;
    unsigned long long reserved_bytes; /* what the driver keeps for itself, counted as used */
    int cc_major, cc_minor;
    unsigned int power_limit_mw;
    unsigned int idle_power_mw;
    unsigned int pci_device_id;
    unsigned int pci_subsystem_id;
    int mig_capable;
    int ecc;       /* ECC counters readable (ECC on, as shipped) */
    int row_remap; /* HBM boards remap rows instead of retiring pages */
} profile_t;

/* Names, memory sizes and ids as NVML reports them on these boards. */
static const profile_t PROFILES[] = {
    {"h100", "NVIDIA H100 80GB HBM3", 85520809984ULL, 566231040ULL, 9, 0, 700000, 72000,
     0x233010DE, 0x16C110DE, 1, 1, 1},
    {"a100", "NVIDIA A100-SXM4-80GB", 85899345920ULL, 444596224ULL, 8, 0, 400000, 61000,
     0x20B210DE, 0x147F10DE, 1, 1, 1},
    {"l40s", "NVIDIA L40S", 48305799168ULL, 553648128ULL, 8, 9, 350000, 36000, 0x26B910DE,
     0x185110DE, 0, 1, 0},
    {"t4", "Tesla T4", 16106127360ULL, 264241152ULL, 7, 5, 70000, 9000, 0x1EB810DE, 0x12A210DE,
     0, 1, 0},
    /* GeForce boards ship with ECC off: its counters answer NOT_SUPPORTED. */
    {"rtx4090", "NVIDIA GeForce RTX 4090", 25757220864ULL, 413138944ULL, 8, 9, 450000, 21000,
     0x268410DE, 0x889C1043, 0, 0, 0},
};

typedef struct {
    const profile_t *profile;
    unsigned int index;    /* NVML enumeration index */
    unsigned int position; /* board position in GRIDLEASE_SIM_GPUS: decides UUID and PCI bus */
    int lost;         /* these three: the variables' faults or the fault file's */
    int ecc;          /* uncorrectable volatile ECC errors */
    int remap_failed; /* row remapping failed */
    int mig;
    char uuid[48];
} sim_device_t;

static sim_device_t devices[MAX_DEVICES];
static unsigned int device_count;
static int init_refcount;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int utilization_pct;
static char unsupported[256];
static char absent[256];
static char lost[256];
static char mig[256];
static char ecc[256];
static char remap[256];
typedef struct {
    unsigned int position;
    unsigned long long xid;
} xid_t;
/* The variable's XIDs first (env_xid_count of them), then the fault file's. */
static xid_t xids[MAX_XIDS];
static unsigned int xid_count;
static unsigned int env_xid_count;
static unsigned int position_count; /* boards configured, absent ones included */

/* The fault file (GRIDLEASE_SIM_FAULT_FILE): what it held when last read. fault_lock guards
 * it, the devices' lost/ecc/remap_failed flags and the XID list, which a thread may change
 * while another queries (lock order: init_lock, then fault_lock). */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static char fault_file[512];
static struct {
    int valid; /* 0: read the file at the next look */
    int present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} fault_stamp;
static char file_lost[256];
static char file_ecc[256];
static char file_remap[256];

/* An event set: which boards (by position) are registered for XIDs, and how many of the
 * configured XIDs it has delivered. */
typedef struct {
    int registered[MAX_DEVICES];
    unsigned int delivered;
} event_set_t;

typedef struct {
    void *device;
    unsigned long long eventType;
    unsigned long long eventData;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

static const profile_t *find_profile(const char *key, size_t len) {
    for (size_t i = 0; i < sizeof(PROFILES) / sizeof(PROFILES[0]); i++) {
        if (strlen(PROFILES[i].key) == len && strncmp(PROFILES[i].key, key, len) == 0)
            return &PROFILES[i];
    }
    return NULL;
}

/* FNV-1a: a fixed hash so the same configuration always yields the same UUIDs. */
static unsigned long long fnv1a(const char *s, unsigned long long h) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* splitmix64 finaliser: spreads FNV's output so neighbouring indexes give unrelated UUIDs. */
static unsigned long long mix(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void make_uuid(sim_device_t *d, const char *seed) {
    char material[160];
    snprintf(material, sizeof material, "gridlease-sim|%s|%s|%u", seed, d->profile->key,
             d->position);
    unsigned long long hi = mix(fnv1a(material, 14695981039346656037ULL));
    unsigned long long lo = mix(hi ^ 0x9E3779B97F4A7C15ULL);
    snprintf(d->uuid, sizeof d->uuid, "GPU-%08llx-%04llx-%04llx-%04llx-%012llx",
             hi >> 32, (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48, lo & 0xFFFFFFFFFFFFULL);
}

static int is_unsupported(const char *field) {
    size_t n = strlen(field);
    const char *p = unsupported;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, field, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Whether `list` (a comma list of decimal positions, "" for none) holds `position`. A
 * malformed list holds nothing, which configure() reports as an invalid configuration. */
static int list_has(const char *list, unsigned int position) {
    const char *p = list;
    while (*p) {
        char *end;
        unsigned long n = strtoul(p, &end, 10);
        if (end == p)
            return 0;
        if (n == position)
            return 1;
        if (*end != ',')
            return 0;
        p = end + 1;
    }
    return 0;
}

/* Every entry of `list` is a position below `total`. */
static int list_valid(const char *list, unsigned int total) {
    const char *p = list;
    while (*p) {
        char *end;
        unsigned long n = strtoul(p, &end, 10);
        if (end == p || n >= total || (*end != ',' && *end != '\0'))
            return 0;
        p = *end == ',' ? end + 1 : end;
    }
    return 1;
}

static void copy_env(char *dst, size_t size, const char *name) {
    const char *value = getenv(name);
    snprintf(dst, size, "%s", value ? value : "");
}

/* Parses "1:79,3:48" (NULL or "" for none) into out[0..capacity) against position_count
 * boards; returns how many, or -1 when malformed or too many. */
static int parse_xids(const char *p, xid_t *out, unsigned int capacity) {
    unsigned int n = 0;
    while (p && *p) {
        char *end;
        unsigned long position = strtoul(p, &end, 10);
        if (end == p || *end != ':' || position >= position_count || n == capacity)
            return -1;
        const char *xid = end + 1;
        unsigned long long value = strtoull(xid, &end, 10);
        if (end == xid || value == 0)
            return -1;
        out[n].position = (unsigned int)position;
        out[n].xid = value;
        n++;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return -1;
        p = end;
    }
    return (int)n;
}

/* Sets each device's fault flags from the variables' lists and the fault file's. Caller holds
 * fault_lock. */
static void apply_faults_locked(void) {
    for (unsigned int i = 0; i < device_count; i++) {
        sim_device_t *d = &devices[i];
        d->lost = list_has(lost, d->position) || list_has(file_lost, d->position);
        d->ecc = list_has(ecc, d->position) || list_has(file_ecc, d->position);
        d->remap_failed = list_has(remap, d->position) || list_has(file_remap, d->position);
    }
}

/* Copies a fault file's position list into dst; 0 if it is well formed and fits. */
static int take_list(char *dst, size_t size, const char *value) {
    if (strlen(value) >= size || !list_valid(value, position_count))
        return -1;
    snprintf(dst, size, "%s", value);
    return 0;
}

/* Parses fault file text ("lost=3;xid=2:79", modified in place) and, only if all of it is
 * well formed, makes it the file's faults. Caller holds fault_lock. */
static int read_fault_text(char *text) {
    char new_lost[sizeof file_lost] = "", new_ecc[sizeof file_ecc] = "";
    char new_remap[sizeof file_remap] = "";
    xid_t new_xids[MAX_XIDS];
    int new_xid_count = 0;
    char *save = NULL;
    for (char *part = strtok_r(text, "; \t\r\n", &save); part;
         part = strtok_r(NULL, "; \t\r\n", &save)) {
        char *value = strchr(part, '=');
        if (!value)
            return -1;
        *value++ = '\0';
        int bad;
        if (strcmp(part, "lost") == 0)
            bad = take_list(new_lost, sizeof new_lost, value);
        else if (strcmp(part, "ecc") == 0)
            bad = take_list(new_ecc, sizeof new_ecc, value);
        else if (strcmp(part, "remap") == 0)
            bad = take_list(new_remap, sizeof new_remap, value);
        else if (strcmp(part, "xid") == 0)
            bad = (new_xid_count = parse_xids(value, new_xids, MAX_XIDS - env_xid_count)) < 0;
        else
            bad = 1; /* absent and mig change enumeration: only at nvmlInit */
        if (bad)
            return -1;
    }
    memcpy(file_lost, new_lost, sizeof file_lost);
    memcpy(file_ecc, new_ecc, sizeof file_ecc);
    memcpy(file_remap, new_remap, sizeof file_remap);
    memcpy(&xids[env_xid_count], new_xids, (size_t)new_xid_count * sizeof new_xids[0]);
    xid_count = env_xid_count + (unsigned int)new_xid_count;
    return 0;
}

/* Reads the fault file again if it changed since the last look. Caller holds fault_lock. */
static void refresh_faults_locked(void) {
    if (!fault_file[0])
        return;
    struct stat st;
    int present = stat(fault_file, &st) == 0;
    if (fault_stamp.valid && present == fault_stamp.present &&
        (!present || (st.st_dev == fault_stamp.dev && st.st_ino == fault_stamp.ino &&
                      st.st_size == fault_stamp.size &&
                      st.st_mtim.tv_sec == fault_stamp.mtime.tv_sec &&
                      st.st_mtim.tv_nsec == fault_stamp.mtime.tv_nsec)))
        return;
    fault_stamp.valid = 1;
    fault_stamp.present = present;
    if (present) {
        fault_stamp.dev = st.st_dev;
        fault_stamp.ino = st.st_ino;
        fault_stamp.size = st.st_size;
        fault_stamp.mtime = st.st_mtim;
    }
    char text[FAULT_TEXT_MAX] = "";
    FILE *f = present ? fopen(fault_file, "r") : NULL;
    size_t n = f ? fread(text, 1, sizeof text, f) : 0;
    if (f)
        fclose(f);
    if (n == sizeof text || read_fault_text(text) != 0) {
        fprintf(stderr, "gridlease nvml-sim: malformed fault file %s ignored\n", fault_file);
        return;
    }
    apply_faults_locked();
}

/* One fault flag of a device as it is now (the fault file read again if it changed). */
static int fault_flag(const int *flag) {
    pthread_mutex_lock(&fault_lock);
    refresh_faults_locked();
    int value = *flag;
    pthread_mutex_unlock(&fault_lock);
    return value;
}

/* Parses GRIDLEASE_SIM_GPUS ("h100:8,t4:1"); any malformed part fails the whole init. */
static nvmlReturn_t configure(void) {
    const char *spec = getenv("GRIDLEASE_SIM_GPUS");
    const char *seed = getenv("GRIDLEASE_SIM_SEED");
    const char *unsup = getenv("GRIDLEASE_SIM_UNSUPPORTED");
    const char *util = getenv("GRIDLEASE_SIM_UTILIZATION");
    if (!spec || !*spec)
        return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(unsupported, sizeof unsupported, "%s", unsup ? unsup : "");
    copy_env(absent, sizeof absent, "GRIDLEASE_SIM_ABSENT");
    copy_env(lost, sizeof lost, "GRIDLEASE_SIM_LOST");
    copy_env(mig, sizeof mig, "GRIDLEASE_SIM_MIG");
    copy_env(ecc, sizeof ecc, "GRIDLEASE_SIM_ECC");
    copy_env(remap, sizeof remap, "GRIDLEASE_SIM_REMAP");
    utilization_pct = util ? (unsigned int)strtoul(util, NULL, 10) : 0;
    if (utilization_pct > 100)
        return NVML_ERROR_INVALID_ARGUMENT;

    device_count = 0;
    unsigned int position = 0;
    const char *p = spec;
    while (*p) {
        const char *colon = strchr(p, ':');
        if (!colon)
            return NVML_ERROR_INVALID_ARGUMENT;
        const profile_t *profile = find_profile(p, (size_t)(colon - p));
        char *end;
        unsigned long n = strtoul(colon + 1, &end, 10);
        if (!profile || end == colon + 1 || n == 0 || position + n > MAX_DEVICES)
            return NVML_ERROR_INVALID_ARGUMENT;
        for (unsigned long i = 0; i < n; i++, position++) {
            if (list_has(mig, position) && !profile->mig_capable)
                return NVML_ERROR_INVALID_ARGUMENT;
            if (list_has(absent, position))
                continue;
            sim_device_t *d = &devices[device_count];
            d->profile = profile;
            d->index = device_count;
            d->position = position;
            d->mig = list_has(mig, position);
            make_uuid(d, seed ? seed : "");
            device_count++;
        }
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return NVML_ERROR_INVALID_ARGUMENT;
        p = end;
    }
    position_count = position;
    if (!list_valid(absent, position) || !list_valid(lost, position) ||
        !list_valid(mig, position) || !list_valid(ecc, position) || !list_valid(remap, position))
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fault_lock);
    int count = parse_xids(getenv("GRIDLEASE_SIM_XID"), xids, MAX_XIDS);
    env_xid_count = xid_count = count < 0 ? 0 : (unsigned int)count;
    /* A new configuration starts from the variables alone; the file is read at first use. */
    copy_env(fault_file, sizeof fault_file, "GRIDLEASE_SIM_FAULT_FILE");
    file_lost[0] = file_ecc[0] = file_remap[0] = '\0';
    fault_stamp.valid = 0;
    apply_faults_locked();
    pthread_mutex_unlock(&fault_lock);
    return count < 0 ? NVML_ERROR_INVALID_ARGUMENT : NVML_SUCCESS;
}

/* A handle is a pointer into `devices`; checked so a stale or foreign handle cannot crash us. */
static sim_device_t *device_of(void *handle) {
    sim_device_t *d = (sim_device_t *)handle;
    if (!init_refcount || d < devices || d >= devices + device_count)
        return NULL;
    return d;
}

/* The start of every device query: INVALID_ARGUMENT for a bad handle, GPU_IS_LOST for a board
 * that fell off the bus, SUCCESS (with *out set) otherwise. */
static nvmlReturn_t query(void *handle, sim_device_t **out) {
    sim_device_t *d = device_of(handle);
    if (!d)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (fault_flag(&d->lost))
        return NVML_ERROR_GPU_IS_LOST;
    *out = d;
    return NVML_SUCCESS;
}

#define QUERY(handle, d)                                                                       \
    sim_device_t *d;                                                                           \
    do {                                                                                       \
        nvmlReturn_t q_ = query(handle, &d);                                                   \
        if (q_ != NVML_SUCCESS)                                                                \
            return q_;                                                                         \
    } while (0)

static nvmlReturn_t copy_string(char *dst, unsigned int size, const char *src) {
    if (!dst)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > size)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    pthread_mutex_lock(&init_lock);
    nvmlReturn_t ret = init_refcount ? NVML_SUCCESS : configure();
    if (ret == NVML_SUCCESS)
        init_refcount++;
    pthread_mutex_unlock(&init_lock);
    return ret;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&init_lock);
    nvmlReturn_t ret = NVML_ERROR_UNINITIALIZED;
    if (init_refcount) {
        init_refcount--;
        ret = NVML_SUCCESS;
    }
    pthread_mutex_unlock(&init_lock);
    return ret;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    return copy_string(version, length, "550.54.15");
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    if (!version)
        return NVML_ERROR_INVALID_ARGUMENT;
    *version = 12040;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) {
    return nvmlSystemGetCudaDriverVersion(version);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= device_count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetName(void *handle, char *name, unsigned int length) {
    QUERY(handle, d);
    return copy_string(name, length, d->profile->name);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(void *handle, char *uuid, unsigned int length) {
    QUERY(handle, d);
    return copy_string(uuid, length, d->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *handle, nvmlPciInfo_t *pci) {
    QUERY(handle, d);
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    /* Spread boards over buses the way multi-socket servers place them. */
    pci->bus = 0x18 + d->position * 0x10;
    pci->pciDeviceId = d->profile->pci_device_id;
    pci->pciSubSystemId = d->profile->pci_subsystem_id;
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
    return NVML_SUCCESS;
}

static unsigned long long used_bytes(const sim_device_t *d) {
    /* Utilisation also fills memory, so a busy simulated GPU looks busy on both dashboards. */
    unsigned long long usable = d->profile->memory_bytes - d->profile->reserved_bytes;
    return d->profile->reserved_bytes + usable / 100 * utilization_pct;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(void *handle, nvmlMemory_t *memory) {
    QUERY(handle, d);
    if (!memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = d->profile->memory_bytes;
    memory->used = used_bytes(d);
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *handle, nvmlMemory_v2_t *memory) {
    QUERY(handle, d);
    if (!memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = d->profile->memory_bytes;
    memory->reserved = d->profile->reserved_bytes;
    memory->used = used_bytes(d) - d->profile->reserved_bytes;
    memory->free = memory->total - memory->reserved - memory->used;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(void *handle, int *major, int *minor) {
    QUERY(handle, d);
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (is_unsupported("compute_capability"))
        return NVML_ERROR_NOT_SUPPORTED;
    *major = d->profile->cc_major;
    *minor = d->profile->cc_minor;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(void *handle, nvmlUtilization_t *util) {
    QUERY(handle, d);
    if (!util)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (is_unsupported("utilization"))
        return NVML_ERROR_NOT_SUPPORTED;
    util->gpu = utilization_pct;
    util->memory = utilization_pct / 2;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(void *handle, int sensor, unsigned int *temp) {
    QUERY(handle, d);
    if (!temp || sensor != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (is_unsupported("temperature"))
        return NVML_ERROR_NOT_SUPPORTED;
    *temp = 30 + d->position + utilization_pct / 2;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(void *handle, unsigned int *power_mw) {
    QUERY(handle, d);
    if (!power_mw)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (is_unsupported("power"))
        return NVML_ERROR_NOT_SUPPORTED;
    unsigned int span = d->profile->power_limit_mw - d->profile->idle_power_mw;
    *power_mw = d->profile->idle_power_mw + span / 100 * utilization_pct;
    return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *handle, unsigned int *limit_mw) {
    QUERY(handle, d);
    if (!limit_mw)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (is_unsupported("power_limit"))
        return NVML_ERROR_NOT_SUPPORTED;
    *limit_mw = d->profile->power_limit_mw;
    return NVML_SUCCESS;
}

/* Only uncorrectable errors are injected (GRIDLEASE_SIM_ECC: one), volatile and aggregate
 * alike; correctable counters read 0. */
EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(void *handle, unsigned int error_type,
                                                unsigned int counter_type,
                                                unsigned long long *count) {
    QUERY(handle, d);
    if (!count || error_type > NVML_MEMORY_ERROR_TYPE_UNCORRECTED || counter_type > 1)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->profile->ecc || is_unsupported("ecc"))
        return NVML_ERROR_NOT_SUPPORTED;
    int injected = fault_flag(&d->ecc);
    *count = error_type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED ? (unsigned long long)injected : 0;
    return NVML_SUCCESS;
}

/* GRIDLEASE_SIM_REMAP sets failureOccurred only; the row counts stay 0. */
EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(void *handle, unsigned int *corr_rows,
                                              unsigned int *unc_rows, unsigned int *is_pending,
                                              unsigned int *failure_occurred) {
    QUERY(handle, d);
    if (!corr_rows || !unc_rows || !is_pending || !failure_occurred)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->profile->row_remap || is_unsupported("remapped_rows"))
        return NVML_ERROR_NOT_SUPPORTED;
    *corr_rows = 0;
    *unc_rows = 0;
    *is_pending = 0;
    *failure_occurred = (unsigned int)fault_flag(&d->remap_failed);
    return NVML_SUCCESS;
}

#ifndef SIM_OMIT_MIG_MODE
EXPORT nvmlReturn_t nvmlDeviceGetMigMode(void *handle, unsigned int *current,
                                         unsigned int *pending) {
    QUERY(handle, d);
    if (!current || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!d->profile->mig_capable || is_unsupported("mig"))
        return NVML_ERROR_NOT_SUPPORTED;
    *current = (unsigned int)d->mig;
    *pending = (unsigned int)d->mig;
    return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlEventSetCreate(void **set) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    if (!set)
        return NVML_ERROR_INVALID_ARGUMENT;
    *set = calloc(1, sizeof(event_set_t));
    return *set ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(void *handle, unsigned long long types, void *set) {
    QUERY(handle, d);
    if (!set)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (types & XID_CRITICAL_ERROR)
        ((event_set_t *)set)->registered[d->position] = 1;
    return NVML_SUCCESS;
}

static sim_device_t *device_at(unsigned int position) {
    for (unsigned int i = 0; i < device_count; i++)
        if (devices[i].position == position)
            return &devices[i];
    return NULL;
}

/* The next configured XID on a registered board, or TIMEOUT after sleeping `timeout_ms`. */
EXPORT nvmlReturn_t nvmlEventSetWait_v2(void *set, nvmlEventData_t *data, unsigned int timeout_ms) {
    if (!init_refcount)
        return NVML_ERROR_UNINITIALIZED;
    event_set_t *events = (event_set_t *)set;
    if (!events || !data)
        return NVML_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&fault_lock);
    refresh_faults_locked();
    while (events->delivered < xid_count) {
        unsigned int i = events->delivered++;
        sim_device_t *d = device_at(xids[i].position);
        if (!d || !events->registered[xids[i].position])
            continue;
        memset(data, 0, sizeof *data);
        data->device = d;
        data->eventType = XID_CRITICAL_ERROR;
        data->eventData = xids[i].xid;
        data->gpuInstanceId = 0xFFFFFFFF;
        data->computeInstanceId = 0xFFFFFFFF;
        pthread_mutex_unlock(&fault_lock);
        return NVML_SUCCESS;
    }
    pthread_mutex_unlock(&fault_lock);
    struct timespec pause = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    return NVML_ERROR_TIMEOUT;
}

EXPORT nvmlReturn_t nvmlEventSetFree(void *set) {
    free(set);
    return NVML_SUCCESS;
}

#ifdef SIM_OMIT_MIG_MODE
#define SIM_VARIANT "no_mig_mode"
#else
#define SIM_VARIANT "full"
#endif

/* Not part of NVML: tells the agent this is the stand-in, and which build of it. */
EXPORT const char *gridlease_nvml_sim(void) { return SIM_VARIANT; }
