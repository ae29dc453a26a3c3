/*
 * nfq-delay: hold every packet of one NFQUEUE queue for a fixed time, then accept it.
 *
 * The kernel of the benchmark machines has no netem qdisc, but iptables' NFQUEUE target is
 * built in.  The benchmark sends the packets that enter and leave a registry's network
 * namespace to a queue; this program, running in that namespace, gives each one back after
 * DELAY microseconds (half the round trip, so that a request and its answer see the whole
 * round trip).  The delay is constant, so packets leave in the order they came (no
 * reordering), and they are released in batches with one verdict for the newest due packet.
 *
 * usage: nfq-delay QUEUE-NUM DELAY-US
 * Build: gcc -O2 -o nfq-delay nfq-delay.c -lnetfilter_queue -lnfnetlink
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#define RING (1u << 20)

static uint32_t ids[RING];
static uint64_t dues[RING];
static uint32_t head, tail; /* head: oldest held packet; tail: next free slot */
static uint64_t delay_ns;
static uint64_t held_total, dropped_total;
static volatile sig_atomic_t stop;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (tail - head >= RING) {
        /* Ring full (never seen in practice): let the packet go undelayed. */
        nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
        dropped_total++;
        return 0;
    }
    ids[tail % RING] = id;
    dues[tail % RING] = now_ns() + delay_ns;
    tail++;
    held_total++;
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s QUEUE-NUM DELAY-US\n", argv[0]);
        return 2;
    }
    int qnum = atoi(argv[1]);
    delay_ns = (uint64_t)strtoull(argv[2], NULL, 10) * 1000ull;

    /* Wake up on time: the default timer slack (50 us) would add to every delay. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    struct nfq_handle *h = nfq_open();
    if (!h) {
        perror("nfq_open");
        return 1;
    }
    nfq_unbind_pf(h, AF_INET);
    if (nfq_bind_pf(h, AF_INET) < 0) {
        perror("nfq_bind_pf");
        return 1;
    }
    struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, &on_packet, NULL);
    if (!qh) {
        perror("nfq_create_queue");
        return 1;
    }
    /* Metadata only: the packet id is all this program needs. */
    if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
        perror("nfq_set_mode");
        return 1;
    }
    nfq_set_queue_maxlen(qh, 200000);
    /* Take GSO super-packets whole instead of having the kernel segment them first. */
    nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);

    int fd = nfq_fd(h);
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    nfnl_rcvbufsiz(nfq_nfnlh(h), 64 * 1024 * 1024);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fprintf(stderr, "nfq-delay: queue %d, delay %llu us\n", qnum,
            (unsigned long long)(delay_ns / 1000));
    static char buf[65536] __attribute__((aligned));
    while (!stop) {
        struct timespec ts, *tsp = NULL;
        if (tail != head) {
            uint64_t now = now_ns(), due = dues[head % RING];
            uint64_t wait = due > now ? due - now : 0;
            ts.tv_sec = (time_t)(wait / 1000000000ull);
            ts.tv_nsec = (long)(wait % 1000000000ull);
            tsp = &ts;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = ppoll(&pfd, 1, tsp, NULL);
        if (r < 0 && errno != EINTR) {
            perror("ppoll");
            break;
        }
        if (r > 0 && (pfd.revents & POLLIN)) {
            for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) break;
                nfq_handle_packet(h, buf, (int)n);
            }
        }
        /* Release every packet that is due, with one verdict for the newest of them. */
        uint64_t now = now_ns();
        uint32_t last = 0;
        int any = 0;
        while (tail != head && dues[head % RING] <= now) {
            last = ids[head % RING];
            head++;
            any = 1;
        }
        if (any) nfq_set_verdict_batch(qh, last, NF_ACCEPT);
    }
    /* Let whatever is still held go. */
    if (tail != head) nfq_set_verdict_batch(qh, ids[(tail - 1) % RING], NF_ACCEPT);
    fprintf(stderr, "nfq-delay: %llu packets held, %llu passed undelayed (ring full)\n",
            (unsigned long long)held_total, (unsigned long long)dropped_total);
    nfq_destroy_queue(qh);
    nfq_close(h);
    return 0;
}
