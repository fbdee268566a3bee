-- A prefecture's reviewed materials reach the region as an event its review applies
-- (Art. 10), wherever the prefecture's review runs: a prefecture's session writes no region
-- row at all any more.
DROP POLICY review_task_tenant ON review_task;
CREATE POLICY review_task_tenant ON review_task
    USING (creditmesh_tenant_visible(tenant))
    WITH CHECK (creditmesh_tenant_visible(tenant));
