#!/usr/bin/env bash
# Faults on one node's links in the fault testnet (testnets/netns/up.sh).
#
#   fault.sh cut NODE         the node's link goes down: nothing reaches it and nothing it sends
#                             leaves (peers and the proxy see silence, as in a partition)
#   fault.sh delay MS NODE    every packet to and from the node is held MS ms (1-60000), so a
#                             round trip with it takes 2*MS longer
#   fault.sh loss PCT NODE    every packet to and from the node is dropped with probability PCT %
#                             (1-100)
#   fault.sh heal NODE|all    every fault of the node (or of all nodes) undone
#   fault.sh show             the faults in force, one line per node
#
# Faults add up (a node can be delayed and lossy); delay and loss replace an earlier delay or loss
# of the same node. A cut is the root end of the node's veth pair set down. Delay and loss use tc
# netem on both ends of the pair where the kernel has it; on a kernel without sch_netem (as on
# our CI machines) they use iptables inside the node's namespace instead: a random-drop rule for
# loss, and for delay the NFQUEUE target with delay.py, which holds each packet MS ms in user
# space. QL_NETNS_DELAY=nfqueue picks the iptables way even where netem exists. Exit status: 0
# done, 1 anything refused or failed (the message says what).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$here/lib.sh"

usage="usage: fault.sh cut NODE | delay MS NODE | loss PCT NODE | heal NODE|all | show"

# The faults of node $1 as recorded in $QL_STATE/fault-<id>: cut (0/1), delay (ms, 0 none), loss
# (percent, 0 none), mechanism (netem or nfqueue, for what is in force).
read_fault() {
    cut=0 delay=0 loss=0 mechanism=
    if [[ -f "$QL_STATE/fault-$1" ]]; then
        # shellcheck source=/dev/null
        source "$QL_STATE/fault-$1"
    fi
}

write_fault() {
    printf 'cut=%q\ndelay=%q\nloss=%q\nmechanism=%q\n' "$cut" "$delay" "$loss" "$mechanism" >"$QL_STATE/fault-$1"
}

in_node() {
    local id="$1"
    shift
    ip netns exec "$(ql_namespace "$id")" "$@"
}

# Whether this kernel has sch_netem (tried on the node's root link, then removed again).
netem_available() {
    [[ "${QL_NETNS_DELAY:-}" != nfqueue ]] || return 1
    command -v tc >/dev/null 2>&1 || return 1
    tc qdisc replace dev "$(ql_link "$1")" root netem delay 1ms >/dev/null 2>&1 || return 1
    tc qdisc del dev "$(ql_link "$1")" root >/dev/null 2>&1 || true
}

delayer_pid() { [[ -f "$QL_STATE/delay-$1.ready" ]] && tr -dc '0-9' <"$QL_STATE/delay-$1.ready"; }

# Stops node $1's delay.py, which first lets every packet it holds through; bounded (about 4 s).
stop_delayer() {
    local pid
    pid="$(delayer_pid "$1" || true)"
    rm -f "$QL_STATE/delay-$1.ready"
    [[ -n "$pid" ]] || return 0
    grep -q 'delay\.py' "/proc/$pid/cmdline" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Starts delay.py in node $1's namespace holding packets $2 ms; waits (at most 5 s) until it has
# bound its queue, since iptables must not queue packets before anyone takes them.
start_delayer() {
    local id="$1" ms="$2"
    command -v python3 >/dev/null 2>&1 || ql_die "delay without netem needs python3 (delay.py); install it"
    rm -f "$QL_STATE/delay-$id.ready"
    setsid ip netns exec "$(ql_namespace "$id")" python3 "$here/delay.py" --queue 0 --delay-ms "$ms" \
        --ready-file "$QL_STATE/delay-$id.ready" </dev/null >>"$QL_STATE/delay-$id.log" 2>&1 &
    for _ in $(seq 1 50); do
        [[ -s "$QL_STATE/delay-$id.ready" ]] && return 0
        sleep 0.1
    done
    ql_die "node $id: delay.py did not bind its netfilter queue within 5 s (log: $QL_STATE/delay-$id.log)"
}

# Removes every delay and loss of node $1, whichever way they were made.
clear_shaping() {
    local id="$1"
    tc qdisc del dev "$(ql_link "$id")" root >/dev/null 2>&1 || true
    in_node "$id" tc qdisc del dev eth0 root >/dev/null 2>&1 || true
    if command -v iptables >/dev/null 2>&1; then
        # The node's namespace holds no rules but these: flush them all.
        in_node "$id" iptables -w -F >/dev/null 2>&1 || true
        in_node "$id" iptables -w -X >/dev/null 2>&1 || true
    fi
    stop_delayer "$id"
}

# Makes node $1's links match its recorded faults, from a clean state.
apply() {
    local id="$1" link
    link="$(ql_link "$id")"
    read_fault "$id"
    clear_shaping "$id"
    mechanism=
    if ((delay > 0 || loss > 0)); then
        if netem_available "$id"; then
            mechanism=netem
            local netem=()
            ((delay > 0)) && netem+=(delay "${delay}ms")
            ((loss > 0)) && netem+=(loss "${loss}%")
            tc qdisc replace dev "$link" root netem "${netem[@]}"
            in_node "$id" tc qdisc replace dev eth0 root netem "${netem[@]}"
        else
            mechanism=nfqueue
            command -v iptables >/dev/null 2>&1 ||
                ql_die "this kernel has no sch_netem, and the fallback needs iptables (scripts/install-deps.sh --netns)"
            in_node "$id" iptables -w -N QL_FAULT
            in_node "$id" iptables -w -A INPUT -i eth0 -j QL_FAULT
            in_node "$id" iptables -w -A OUTPUT -o eth0 -j QL_FAULT
            if ((loss > 0)); then
                local probability
                probability="$(printf '0.%04d' $((loss * 100)))"
                ((loss == 100)) && probability=1
                in_node "$id" iptables -w -A QL_FAULT -m statistic --mode random --probability "$probability" -j DROP
            fi
            if ((delay > 0)); then
                start_delayer "$id" "$delay"
                in_node "$id" iptables -w -A QL_FAULT -j NFQUEUE --queue-num 0
            fi
        fi
    fi
    if ((cut)); then ip link set "$link" down; else ip link set "$link" up; fi
    write_fault "$id"
}

describe() {
    read_fault "$1"
    local faults=()
    ((cut)) && faults+=("cut")
    ((delay > 0)) && faults+=("delay ${delay} ms")
    ((loss > 0)) && faults+=("loss ${loss} %")
    if ((${#faults[@]} == 0)); then
        printf 'node %s (%s): no fault\n' "$1" "$(ql_address "$1")"
    else
        local joined
        joined="$(printf '%s, ' "${faults[@]}")"
        printf 'node %s (%s): %s%s\n' "$1" "$(ql_address "$1")" "${joined%, }" "${mechanism:+ (by $mechanism)}"
    fi
}

number_in() {
    local value="$1" low="$2" high="$3" what="$4"
    if ! [[ "$value" =~ ^[0-9]+$ ]] || ((value < low || value > high)); then
        ql_die "$what '$value': expected a whole number $low-$high"
    fi
}

(($# >= 1)) || ql_die "$usage"
[[ "$1" == -h || "$1" == --help ]] && {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
}
ql_load_state
command="$1"
shift
case "$command" in
cut)
    (($# == 1)) || ql_die "$usage"
    ql_check_node "$1"
    read_fault "$1"
    cut=1
    write_fault "$1"
    apply "$1"
    describe "$1"
    ;;
delay)
    (($# == 2)) || ql_die "$usage"
    number_in "$1" 1 60000 "delay (ms)"
    ql_check_node "$2"
    read_fault "$2"
    delay="$1"
    write_fault "$2"
    apply "$2"
    describe "$2"
    ;;
loss)
    (($# == 2)) || ql_die "$usage"
    number_in "$1" 1 100 "loss (percent)"
    ql_check_node "$2"
    read_fault "$2"
    loss="$1"
    write_fault "$2"
    apply "$2"
    describe "$2"
    ;;
heal)
    (($# == 1)) || ql_die "$usage"
    if [[ "$1" == all ]]; then
        targets=$(seq 1 "$QL_NODES")
    else
        ql_check_node "$1"
        targets="$1"
    fi
    for id in $targets; do
        rm -f "$QL_STATE/fault-$id"
        apply "$id"
        describe "$id"
    done
    ;;
show)
    (($# == 0)) || ql_die "$usage"
    for id in $(seq 1 "$QL_NODES"); do describe "$id"; done
    ;;
*) ql_die "unknown fault '$command' ($usage)" ;;
esac
