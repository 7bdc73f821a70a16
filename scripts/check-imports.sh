#!/usr/bin/env bash
# check-imports.sh - enforces the package import rules of DESIGN.md §6:
#   transport -> broker; broker -> cluster, storage; cluster and storage and
#   metrics import no other Flotilla package except as listed; only cluster
#   imports hashicorp/raft or memberlist; only storage and cluster touch bbolt.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0
while read -r pkg imports; do
	rel=${pkg#"$mod"/}
	case $rel in cmd/* | test/* | internal/*) continue ;; esac
	top=${rel%%/*}
	for imp in $imports; do
		case $imp in
		"$mod"/*)
			dep=${imp#"$mod"/}
			dep=${dep%%/*}
			[ "$dep" = "$top" ] && continue
			allowed=""
			case $top in
			transport) allowed="broker metrics" ;;
			broker) allowed="cluster storage metrics" ;;
			cluster) allowed="metrics" ;;
			storage | metrics) allowed="" ;;
			esac
			[ "$dep" = internal ] && continue
			if [[ " $allowed " != *" $dep "* ]]; then
				echo "import rule: $rel must not import $dep"
				fail=1
			fi
			;;
		github.com/hashicorp/raft* | github.com/hashicorp/memberlist*)
			[ "$top" = cluster ] || { echo "import rule: only cluster may import $imp ($rel does)"; fail=1; }
			;;
		go.etcd.io/bbolt*)
			[ "$top" = storage ] || [ "$top" = cluster ] || { echo "import rule: only storage may import bbolt ($rel does)"; fail=1; }
			;;
		net | net/*)
			[ "$top" = broker ] && { echo "import rule: broker must not import $imp"; fail=1; }
			;;
		esac
	done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
[ $fail -eq 0 ] && echo "import rules: ok"
exit $fail
