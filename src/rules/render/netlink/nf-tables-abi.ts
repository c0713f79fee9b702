/**
 * The numbers of the nf_tables netlink ABI that the netlink apply uses, from the kernel's
 * include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h and netlink.h (stable ABI: values are
 * only ever added). Plus the few numbers of nftables' own user-space conventions that the nft
 * tool stores in the kernel (set user data), so that `nft list` reads our tables as its own.
 */

export const NETLINK = {
  F_REQUEST: 0x1,
  F_ACK: 0x4,
  /** NLM_F_ROOT | NLM_F_MATCH: a GET that returns every object. */
  F_DUMP: 0x300,
  F_EXCL: 0x200,
  F_CREATE: 0x400,
  F_APPEND: 0x800,
} as const;

/** nfnetlink: batch framing, and nf_tables' subsystem id (type = subsystem << 8 | message). */
export const NFNL = {
  MSG_BATCH_BEGIN: 0x10,
  MSG_BATCH_END: 0x11,
  SUBSYS_NFTABLES: 10,
  /** BATCH_BEGIN's attribute: the generation the batch was built against (kernel refuses others). */
  BATCH_GENID: 1,
} as const;

export const NFPROTO = { UNSPEC: 0, INET: 1, IPV4: 2, IPV6: 10 } as const;

export const NFT_MSG = {
  NEWTABLE: 0,
  GETTABLE: 1,
  DELTABLE: 2,
  NEWCHAIN: 3,
  NEWRULE: 6,
  NEWSET: 9,
  NEWSETELEM: 12,
  NEWGEN: 15,
  GETGEN: 16,
} as const;

export const NFTA_GEN_ID = 1;
/** What the kernel answers a batch built against an old generation with. */
export const ERESTART = 85;

export const NFTA_LIST_ELEM = 1;
export const NFTA_TABLE = { NAME: 1, FLAGS: 2, USERDATA: 6 } as const;
export const NFTA_CHAIN = { TABLE: 1, NAME: 3, HOOK: 4, POLICY: 5, TYPE: 7 } as const;
export const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2 } as const;
export const NFTA_RULE = { TABLE: 1, CHAIN: 2, EXPRESSIONS: 4 } as const;
export const NFTA_EXPR = { NAME: 1, DATA: 2 } as const;
export const NFTA_SET = { TABLE: 1, NAME: 2, FLAGS: 3, KEY_TYPE: 4, KEY_LEN: 5, DESC: 9, ID: 10, USERDATA: 13 } as const;
export const NFTA_SET_DESC_SIZE = 1;
export const NFTA_SET_ELEM_LIST = { TABLE: 1, SET: 2, ELEMENTS: 3, SET_ID: 4 } as const;
export const NFTA_SET_ELEM = { KEY: 1, FLAGS: 3, USERDATA: 6 } as const;
export const NFTA_DATA = { VALUE: 1, VERDICT: 2 } as const;
export const NFTA_VERDICT = { CODE: 1, CHAIN: 2 } as const;

export const NFT_SET_F = { ANONYMOUS: 0x1, CONSTANT: 0x2, INTERVAL: 0x4 } as const;
export const NFT_SET_ELEM_INTERVAL_END = 0x1;

/** Netfilter hook numbers (NF_INET_*), as base chains name them. */
export const NF_INET_HOOK = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 } as const;
export const NF_ACCEPT = 1;

/** Verdicts: netfilter's NF_DROP/NF_ACCEPT and nf_tables' own (negative) codes. */
export const VERDICT = { drop: 0, accept: 1, jump: -3, return: -5 } as const;

/** Registers: the verdict register and the first 16-byte data register (what nft uses). */
export const NFT_REG_VERDICT = 0;
export const NFT_REG_1 = 1;

// Expression attributes.
export const NFTA_META = { DREG: 1, KEY: 2, SREG: 3 } as const;
export const NFT_META = { MARK: 3, IIFNAME: 6, OIFNAME: 7, SKUID: 10, SKGID: 11, NFPROTO: 15, L4PROTO: 16 } as const;
export const NFTA_CMP = { SREG: 1, OP: 2, DATA: 3 } as const;
export const NFT_CMP = { EQ: 0, NEQ: 1 } as const;
export const NFTA_PAYLOAD = { DREG: 1, BASE: 2, OFFSET: 3, LEN: 4 } as const;
export const NFT_PAYLOAD_BASE = { NETWORK: 1, TRANSPORT: 2 } as const;
export const NFTA_BITWISE = { SREG: 1, DREG: 2, LEN: 3, MASK: 4, XOR: 5 } as const;
export const NFTA_LOOKUP = { SET: 1, SREG: 2, SET_ID: 4, FLAGS: 5 } as const;
export const NFT_LOOKUP_F_INV = 0x1;
export const NFTA_IMMEDIATE = { DREG: 1, DATA: 2 } as const;
export const NFTA_REDIR = { REG_PROTO_MIN: 1, FLAGS: 3 } as const;
/** NF_NAT_RANGE_PROTO_SPECIFIED: the redirect names a port. */
export const NF_NAT_RANGE_PROTO_SPECIFIED = 0x2;
export const NFTA_TPROXY = { FAMILY: 1, REG_PORT: 3 } as const;
export const NFTA_CT = { DREG: 1, KEY: 2, SREG: 4 } as const;
export const NFT_CT = { STATE: 0, MARK: 3, ZONE: 17 } as const;
/** ct state bits (NF_CT_STATE_BIT(IP_CT_*) and the invalid bit). */
export const CT_STATE_BITS = { INVALID: 1, ESTABLISHED: 2, RELATED: 4, NEW: 8 } as const;

export const IPPROTO = { tcp: 6, udp: 17 } as const;

/**
 * nftables' set user data (libnftnl's NFTNL_UDATA_SET_*) and the datatype ids the nft tool
 * stores as a set's key type: `nft list` prints a set's type and elements from these.
 */
export const NFT_DATATYPE = { IPADDR: 7, IP6ADDR: 8, INET_SERVICE: 13 } as const;
export const UDATA_SET = { KEYBYTEORDER: 0, KEY_TYPEOF: 3 } as const;
export const UDATA_SET_TYPEOF = { EXPR: 0, DATA: 1 } as const;
/** Element user data: flags, of which INTERVAL_OPEN marks a range running to the last address. */
export const UDATA_SET_ELEM_FLAGS = 1;
export const UDATA_SET_ELEM_F_INTERVAL_OPEN = 0x1;
/** nft's BYTEORDER_BIG_ENDIAN, its EXPR_PAYLOAD, and its protocol-description/field ids. */
export const NFT_BYTEORDER_BIG_ENDIAN = 2;
export const NFT_EXPR_PAYLOAD = 7;
export const NFT_PROTO_DESC = { udp: 6, tcp: 8 } as const;
export const NFT_PORT_FIELD = { sport: 1, dport: 2 } as const;
