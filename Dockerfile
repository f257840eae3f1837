# One image for every Jarvis service; the command picks which one runs.

# The workspaces' manifests, which both stages install from.
FROM node:22-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY platform/package.json platform/
COPY gateway/package.json gateway/
COPY subgraphs/tenancy/package.json subgraphs/tenancy/
COPY subgraphs/knowledge/package.json subgraphs/knowledge/
COPY subgraphs/chat/package.json subgraphs/chat/
COPY subgraphs/usage/package.json subgraphs/usage/
COPY subgraphs/agents/package.json subgraphs/agents/
COPY web/package.json web/

# The web console, built with the development dependencies only this stage installs.
FROM manifests AS console
RUN npm ci
COPY web web
RUN npm run build -w web

FROM manifests
ENV NODE_ENV=production HOST=0.0.0.0
RUN npm ci --omit=dev && npm cache clean --force
COPY . .
COPY --from=console /app/web/dist web/dist
USER node
EXPOSE 4000 4001 4002 4003 4004 4005
CMD ["node", "--import", "tsx", "scripts/serve.ts", "gateway"]
