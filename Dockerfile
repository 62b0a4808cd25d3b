# seqcast broker image: `docker build -t seqcast .`
#
# The command is the same `seqcast serve` the tests run (node bin/seqcast.js
# serve): TypeScript runs through tsx, a runtime dependency, so there is no
# build step beyond installing the production dependencies.

# --- dependencies: compiled here (better-sqlite3 is native), not in the image we ship
FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SEQCAST_HOST=0.0.0.0 \
    PORT=8080 \
    SEQCAST_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY gen ./gen
COPY src ./src
# The embedded store and the token secret; the official image's "node" user owns it.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# grpc.health.v1 over the Connect protocol (JSON on HTTP/1.1): SERVING only
# while the engine works (with --engine redis: while Redis is reachable).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/grpc.health.v1.Health/Check',{method:'POST',headers:{'content-type':'application/json'},body:'{}'}).then(r=>r.json()).then(b=>process.exit(b.status==='SERVING'?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/seqcast.js"]
CMD ["serve"]
