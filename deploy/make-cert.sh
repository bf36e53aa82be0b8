#!/usr/bin/env bash
# Serving certificate for the webhook without cert-manager: a private CA (CA:TRUE, 2 years)
# and a leaf for the Service's DNS names (CA:FALSE, serverAuth, 1 year — rustls refuses a CA
# certificate as a server certificate). The API server verifies the leaf with the CA given
# as the webhook's caBundle.
#
#   deploy/make-cert.sh [OUTDIR] [NAMESPACE] [SERVICE]   # defaults: ./imgaudit-certs imgaudit imgaudit
#
# Then (the commands are printed at the end):
#   kubectl -n imgaudit create secret tls imgaudit-tls --cert=OUTDIR/tls.crt --key=OUTDIR/tls.key
#   kubectl patch validatingwebhookconfiguration imgaudit --type=json -p '[{"op":"replace",
#     "path":"/webhooks/0/clientConfig/caBundle","value":"<base64 of ca.crt>"}]'
# To rotate: run again, replace the secret (imgaudit reloads the files within 10 s), patch
# the caBundle (keep the old CA in the bundle until every replica serves the new leaf).
set -euo pipefail
OUT=${1:-imgaudit-certs}
NS=${2:-imgaudit}
SVC=${3:-imgaudit}
mkdir -p "$OUT"
cd "$OUT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 730 \
  -keyout ca.key -out ca.crt -subj "/CN=imgaudit webhook CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout tls.key -out tls.csr -subj "/CN=$SVC.$NS.svc" 2>/dev/null
cat > leaf.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$SVC,DNS:$SVC.$NS,DNS:$SVC.$NS.svc,DNS:$SVC.$NS.svc.cluster.local
EXT
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
  -extfile leaf.ext -out tls.crt 2>/dev/null
rm -f tls.csr leaf.ext ca.srl
openssl verify -CAfile ca.crt tls.crt >/dev/null
chmod 600 ca.key tls.key
echo "certificates in $OUT/ (keep ca.key offline)"
echo
echo "kubectl -n $NS create secret tls imgaudit-tls --cert=$OUT/tls.crt --key=$OUT/tls.key"
echo "kubectl patch validatingwebhookconfiguration imgaudit --type=json -p '[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$(base64 -w0 ca.crt)\"}]'"
